-- A self-contained starter model: one row per day of 2024.
select
    d::date as day,
    extract(dow from d) as weekday,
    extract(month from d) as month
from range(date '2024-01-01', date '2025-01-01', interval 1 day) as t(d)
