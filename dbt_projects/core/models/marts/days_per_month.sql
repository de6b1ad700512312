select month, count(*) as days, count(*) filter (where weekday in (0, 6)) as weekend_days
from {{ ref('stg_days') }}
group by month
order by month
