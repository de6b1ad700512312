with orders as (
    select * from {{ ref('stg_orders') }}
),

stores as (
    select store_id, tax_rate from {{ ref('stg_stores') }}
),

items as (
    select
        order_id,
        count(*) as item_count,
        sum(quantity) as quantity,
        sum(subtotal) as subtotal,
        bool_or(is_food_item) as is_food_order,
        bool_or(is_drink_item) as is_drink_order
    from {{ ref('order_items') }}
    group by order_id
),

payments as (
    select
        order_id,
        sum(amount) as amount_paid,
        sum(amount) filter (where payment_method = 'credit_card') as credit_card_amount,
        sum(amount) filter (where payment_method = 'bank_transfer') as bank_transfer_amount,
        sum(amount) filter (where payment_method = 'coupon') as coupon_amount,
        sum(amount) filter (where payment_method = 'gift_card') as gift_card_amount
    from {{ ref('stg_payments') }}
    group by order_id
),

priced as (
    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        orders.ordered_at,
        orders.order_date,
        orders.status,
        items.item_count,
        items.quantity,
        items.subtotal,
        -- Tax is charged on the whole order and rounded to the cent, as the tills do.
        round(items.subtotal * stores.tax_rate, 2) as tax_paid,
        items.is_food_order,
        items.is_drink_order,
        payments.amount_paid,
        coalesce(payments.credit_card_amount, 0) as credit_card_amount,
        coalesce(payments.bank_transfer_amount, 0) as bank_transfer_amount,
        coalesce(payments.coupon_amount, 0) as coupon_amount,
        coalesce(payments.gift_card_amount, 0) as gift_card_amount
    from orders
    join stores on stores.store_id = orders.store_id
    join items on items.order_id = orders.order_id
    left join payments on payments.order_id = orders.order_id
)

select
    *,
    subtotal + tax_paid as order_total,
    row_number() over (partition by customer_id order by ordered_at) as customer_order_number
from priced
