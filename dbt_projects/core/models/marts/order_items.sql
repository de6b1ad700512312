-- Incremental: a run after the first one only adds the items of orders placed after the newest one already
-- here (`dbt build --full-refresh` rebuilds it). `loaded_by_invocation` records which dbt invocation added a row.
{{
    config(
        materialized='incremental',
        unique_key='order_item_id',
        on_schema_change='append_new_columns'
    )
}}

with items as (
    select * from {{ ref('stg_order_items') }}
),

orders as (
    select order_id, store_id, ordered_at from {{ ref('stg_orders') }}
),

products as (
    select * from {{ ref('stg_products') }}
)

select
    items.order_item_id,
    items.order_id,
    orders.store_id,
    orders.ordered_at,
    items.product_id,
    products.product_name,
    products.product_type,
    items.quantity,
    products.product_price as unit_price,
    items.quantity * products.product_price as subtotal,
    products.is_food_item,
    products.is_drink_item,
    '{{ invocation_id }}' as loaded_by_invocation
from items
join orders on orders.order_id = items.order_id
join products on products.product_id = items.product_id

{% if is_incremental() %}
where orders.ordered_at > (select max(ordered_at) from {{ this }})
{% endif %}
