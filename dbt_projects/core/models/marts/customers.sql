with customers as (
    select * from {{ ref('stg_customers') }}
),

orders as (
    select * from {{ ref('orders') }}
),

per_customer as (
    select
        customer_id,
        count(*) as number_of_orders,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        sum(order_total) filter (where status <> 'returned') as lifetime_spend,
        sum(order_total) filter (where status = 'returned') as lifetime_refunds
    from orders
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_name,
    coalesce(per_customer.number_of_orders, 0) as number_of_orders,
    per_customer.first_ordered_at,
    per_customer.last_ordered_at,
    coalesce(per_customer.lifetime_spend, 0) as lifetime_spend,
    coalesce(per_customer.lifetime_refunds, 0) as lifetime_refunds,
    case
        when per_customer.number_of_orders is null then 'prospect'
        when per_customer.number_of_orders = 1 then 'new'
        else 'returning'
    end as customer_type
from customers
left join per_customer on per_customer.customer_id = customers.customer_id
