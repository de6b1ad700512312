select
    id as order_item_id,
    order_id,
    sku as product_id,
    quantity
from {{ ref('raw_order_items') }}
