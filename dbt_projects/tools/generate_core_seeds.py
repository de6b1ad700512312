#!/usr/bin/env python3
"""Writes the starter project's seeds (dbt_projects/core/seeds/*.csv): a small coffee-and-jaffle shop.

Deterministic (a fixed random seed): run it again and the files do not change. The CSVs are committed, so neither
dbt nor `pluto-duck init` needs this script; it is kept to show where the data came from and to grow it.

Invariants the models and tests rely on:
- every order has at least one item and is paid in full: its payments add up to its items' prices plus the store's tax;
- ids are dense and increase with time (orders are placed in id order);
- every foreign key (order -> customer, order -> store, item -> order and product, payment -> order) resolves.
"""
import csv
import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "core" / "seeds"
rng = random.Random(20240101)

STORES = [
    (1, "Philadelphia", "2016-09-01", "0.0600"),
    (2, "Brooklyn", "2017-03-12", "0.0400"),
    (3, "Chicago", "2018-04-29", "0.0625"),
]
PRODUCTS = [
    ("JAF-001", "nutellaphone who dis?", "jaffle", 1100, "nutella and banana jaffle"),
    ("JAF-002", "doctor stew", "jaffle", 1100, "house-made beef stew jaffle"),
    ("JAF-003", "the krautback", "jaffle", 1200, "lamb and pork bratwurst with house-pickled cabbage sauerkraut and mustard"),
    ("JAF-004", "flame impala", "jaffle", 1400, "pulled pork and pineapple al pastor marinated in ghost pepper sauce"),
    ("JAF-005", "mel-bun", "jaffle", 1200, "melon and minced beef bao, in a jaffle, savory and sweet"),
    ("BEV-001", "tangaroo", "beverage", 600, "mango and tangerine smoothie"),
    ("BEV-002", "chai and mighty", "beverage", 500, "oatmilk chai latte with protein boost"),
    ("BEV-003", "vanilla ice", "beverage", 600, "iced coffee with house-made french vanilla syrup"),
    ("BEV-004", "for richer or pourover", "beverage", 700, "daily selection of single estate beans for a delicious hot pourover"),
    ("BEV-005", "adele-ade", "beverage", 400, "a kiwi and lime agua fresca, hello from the other side"),
]
FIRST = ["Michael", "Shawn", "Kathleen", "Jimmy", "Katherine", "Sarah", "Martin", "Frank", "Jennifer", "Henry",
         "Fred", "Amy", "Kathleen", "Steve", "Teresa", "Amanda", "Kimberly", "John", "Ernest", "Anthony"]
LAST = ["P.", "M.", "H.", "C.", "R.", "W.", "T.", "F.", "B.", "G.", "L.", "S.", "D.", "N.", "K."]
STATUSES = ["completed"] * 14 + ["shipped"] * 3 + ["placed"] * 2 + ["return_pending", "returned"]
METHODS = ["credit_card"] * 6 + ["bank_transfer"] * 2 + ["coupon", "gift_card"]

N_CUSTOMERS = 40
N_ORDERS = 100
START = dt.datetime(2024, 1, 2, 8, 0)


def write(name, header, rows):
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


customers = [(i, rng.choice(FIRST), rng.choice(LAST)) for i in range(1, N_CUSTOMERS + 1)]

orders, items, payments = [], [], []
ordered_at = START
for order_id in range(1, N_ORDERS + 1):
    ordered_at += dt.timedelta(minutes=rng.randint(60, 2400))
    # Recent orders are still on their way; older ones are mostly completed.
    status = rng.choice(STATUSES) if order_id <= N_ORDERS - 8 else rng.choice(["placed", "shipped"])
    customer_id = rng.randint(1, N_CUSTOMERS)
    store_id, _, _, tax_rate = rng.choice(STORES)
    orders.append((order_id, customer_id, store_id, ordered_at.strftime("%Y-%m-%d %H:%M:%S"), status))
    subtotal = 0
    for _ in range(rng.choices([1, 2, 3, 4], weights=[3, 4, 2, 1])[0]):
        sku, _, _, price, _ = rng.choice(PRODUCTS)
        quantity = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
        items.append((len(items) + 1, order_id, sku, quantity))
        subtotal += price * quantity
    # Half-up to the cent, as DuckDB's round() on decimals (models/marts/orders.sql).
    total = subtotal + int((subtotal * Decimal(tax_rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if rng.random() < 0.2 and total > 500:
        first = rng.randrange(100, total - 100, 100)
        parts = [(rng.choice(["coupon", "gift_card"]), first), (rng.choice(METHODS[:8]), total - first)]
    else:
        parts = [(rng.choice(METHODS), total)]
    for method, amount in parts:
        payments.append((len(payments) + 1, order_id, method, amount))

write("raw_stores", ["id", "name", "opened_at", "tax_rate"], STORES)
write("raw_products", ["sku", "name", "type", "price", "description"], PRODUCTS)
write("raw_customers", ["id", "first_name", "last_name"], customers)
write("raw_orders", ["id", "customer_id", "store_id", "ordered_at", "status"], orders)
write("raw_order_items", ["id", "order_id", "sku", "quantity"], items)
write("raw_payments", ["id", "order_id", "payment_method", "amount"], payments)
print({p.name: sum(1 for _ in open(p)) - 1 for p in sorted(OUT.glob("*.csv"))})
