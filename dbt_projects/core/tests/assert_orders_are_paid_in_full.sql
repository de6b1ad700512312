-- Every order's payments add up to its total (items plus tax), to the cent. Returns the orders that do not.
select
    order_id,
    order_total,
    amount_paid
from {{ ref('orders') }}
where amount_paid is null
   or abs(amount_paid - order_total) >= 0.005
