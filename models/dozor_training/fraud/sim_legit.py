"""Legit traffic: every ordinary order of the simulated window, generated column-wise.

Buyers are drawn by activity among accounts that existed by the order's day, at their local
hour; carts with several sellers become sibling orders seconds apart; devices, payment, IP and
shipping follow each buyer's habits with a little noise. A share of orders gets a
delivered-and-reviewed confirmation, which is the legit label.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from dozor.domain.clock import DAY, HOUR, MINUTE
from dozor_training.fraud.sim_population import Population
from dozor_training.fraud.sim_tables import (
    ABROAD,
    CAT_MAX_QTY,
    CAT_NAMES,
    DELIVERY_DAYS,
    GIFT,
    HOSTING,
    LEGIT_CARD_COUNTRIES,
    LEGIT_HOURLY,
    PAYMENT_METHODS,
    RU_HOME,
    RU_MOBILE,
    BoolArray,
    Columns,
    FloatArray,
    IntArray,
    Item,
    rub_prices,
    table_p,
    to_currency,
    weighted,
)


def legit_orders(pop: Population, per_day: IntArray) -> Columns:
    """`per_day` legit orders on each day of the window; the steps draw in this order."""
    rng = pop.rng
    buyer, ts, siblings, parent = _order_times(pop, per_day)
    n = len(buyer)
    u = rng.random((n, 10))
    device, channel, app = _devices(pop, buyer, u)
    method, card = _payments(pop, buyer, u)
    # IP: home broadband, the mobile network, a VPN, or abroad on a trip.
    ip, ip_country = _legit_ips(pop, buyer, ts, app, u[:, 6])
    # Shipping: home, the second address, or a gift to someone elsewhere.
    address = np.where((pop.second[buyer] >= 0) & (u[:, 7] < 0.12), pop.second[buyer], pop.home[buyer])
    gift = np.flatnonzero(u[:, 8] < 0.03)
    address[gift] = pop.new_addresses(weighted(rng, pop.pop_p, len(gift)))

    seller = weighted(rng, pop.seller_weight, n)
    cny = (pop.cny_buyer[buyer] & (u[:, 9] < 0.8)) | (u[:, 9] > 0.98)
    cny[siblings], method[siblings], card[siblings] = cny[parent], method[parent], card[parent]
    items, amounts, digital = _legit_items(pop, seller, cny)
    address[digital] = -1
    shared = np.where(address[parent] >= 0, address[parent], pop.home[buyer[siblings]])
    address[siblings] = np.where(digital[siblings], -1, shared)
    for sib, head in zip(siblings.tolist(), parent.tolist(), strict=True):
        device[sib], channel[sib], ip[sib], ip_country[sib] = (
            device[head],
            channel[head],
            ip[head],
            ip_country[head],
        )
    return Columns(
        ts=ts.tolist(),
        buyer=buyer.tolist(),
        phone=[pop.buyer_phone[b] for b in buyer.tolist()],
        seller=seller.tolist(),
        cny=cny.tolist(),
        ip=ip,
        ip_country=ip_country,
        device=device,
        channel=channel,
        method=method.tolist(),
        card=card.tolist(),
        address=address.tolist(),
        items=items,
        amount=amounts,
        pattern=[0] * n,
        label_ts=_label_times(pop, ts, address).tolist(),
    )


def _order_times(pop: Population, per_day: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Who orders when: (buyer, created_at) per order, and the cart siblings with their parent order."""
    rng, cfg = pop.rng, pop.cfg
    created = pop.created
    # Most new accounts are opened at checkout: their first order follows within minutes.
    new = np.flatnonzero(pop.is_new)
    first_buyers = new[rng.random(len(new)) < 0.7]
    first_ts = created[first_buyers] + (MINUTE + rng.lognormal(math.log(12 * MINUTE), 1.0, len(first_buyers)))
    first_ts = np.minimum(first_ts.astype(np.int64), pop.t1 - 1)
    first_day = np.clip((first_ts - pop.t0) // DAY, 0, cfg.days - 1)
    sampled_per_day = np.maximum(per_day - np.bincount(first_day, minlength=cfg.days), 0)

    day = np.repeat(np.arange(cfg.days, dtype=np.int64), sampled_per_day)
    n_s = len(day)
    # Buyers who existed by the end of the order's day, by activity.
    cw = np.cumsum(pop.weight)
    eligible = np.searchsorted(created, pop.t0 + (np.arange(cfg.days) + 1) * DAY, side="right")
    bound = eligible[day]
    buyer = np.searchsorted(cw, rng.random(n_s) * cw[bound - 1], side="right")
    buyer = np.minimum(buyer, bound - 1)
    local_second = weighted(rng, LEGIT_HOURLY, n_s) * HOUR + rng.integers(0, HOUR, n_s)
    ts = pop.t0 + day * DAY + local_second - pop.reg_offset[pop.region[buyer]] * HOUR
    span = pop.t1 - pop.t0
    ts = pop.t0 + (ts - pop.t0) % span  # keeps the local hour at the window's edges
    early = ts < created[buyer] + MINUTE
    ts[early] = created[buyer[early]] + MINUTE + rng.exponential(2 * HOUR, int(early.sum())).astype(np.int64)
    ts = np.minimum(ts, pop.t1 - 1)

    buyer = np.concatenate([first_buyers, buyer])
    ts = np.concatenate([first_ts, ts])
    # A cart with several sellers' items becomes one order per seller, seconds apart: the same
    # buyer, device, card and address several times in a minute is ordinary here.
    rows = np.arange(len(first_buyers), len(buyer))
    in_cart = rng.random(len(rows)) < 0.08
    heads = rows[~in_cart]
    siblings = rows[in_cart] if len(heads) else rows[:0]
    parent = heads[rng.integers(0, max(len(heads), 1), len(siblings))]
    buyer[siblings] = buyer[parent]
    ts[siblings] = np.minimum(ts[parent] + rng.integers(1, 40, len(siblings)), pop.t1 - 1)
    return buyer, ts, siblings, parent


def _devices(
    pop: Population, buyer: IntArray, u: FloatArray
) -> tuple[list[str | None], list[str], BoolArray]:
    """Device and channel; now and then a new phone or a browser that hides its fingerprint."""
    use_second = (pop.n_dev[buyer] == 2) & (u[:, 0] < 0.25)
    app = np.where(use_second, pop.app1[buyer], pop.app0[buyer])
    fresh_device = u[:, 1] < 0.025
    fresh_ids = iter(pop.ids.devices(app[fresh_device].tolist()))
    api = pop.api_buyer[buyer]
    hidden = (u[:, 2] < 0.015) | (api & (u[:, 2] > 0.5))  # API calls often carry no device at all
    dev0, dev1 = pop.dev0, pop.dev1
    device: list[str | None] = []
    for b, second, fresh, hide in zip(
        buyer.tolist(), use_second.tolist(), fresh_device.tolist(), hidden.tolist(), strict=True
    ):
        d = next(fresh_ids) if fresh else (dev1[b] if second else dev0[b])
        device.append(None if hide else d)
    channel: list[str] = np.where(api, "api", np.where(app, "app", "web")).tolist()
    return device, channel, app


def _payments(pop: Population, buyer: IntArray, u: FloatArray) -> tuple[NDArray[np.str_], IntArray]:
    """Payment method and card: the usual method, sometimes another; a new card now and then."""
    rng, n = pop.rng, len(buyer)
    pref = pop.method_pref[buyer]
    other = rng.integers(0, len(PAYMENT_METHODS), n)
    has_card = pop.card0[buyer] >= 0
    method_idx = np.where(u[:, 3] < 0.12, other, pref)
    method_idx = np.where(~has_card & (method_idx == 0) | ~has_card & (method_idx == 3), 1, method_idx)
    method = np.array(PAYMENT_METHODS)[method_idx]
    on_card = (method_idx == 0) | (method_idx == 3)
    card = np.where((pop.card1[buyer] >= 0) & (u[:, 4] < 0.3), pop.card1[buyer], pop.card0[buyer])
    new_card = on_card & (u[:, 5] < 0.015)
    names, p = table_p(LEGIT_CARD_COUNTRIES)
    card[new_card] = pop.new_cards([names[i] for i in weighted(rng, p, int(new_card.sum()))])
    return method, np.where(on_card, card, -1)


def _label_times(pop: Population, ts: IntArray, address: IntArray) -> IntArray:
    """When the delivered-and-reviewed confirmation arrives (-1: never): delivery plus a few days."""
    rng, n = pop.rng, len(ts)
    labelled = rng.random(n) < pop.cfg.legit_label_rate
    tier = np.where(address >= 0, pop.reg_tier[np.array(pop.addr_region)[np.maximum(address, 0)]], -1)
    delivery = np.where(
        tier >= 0, np.array(DELIVERY_DAYS)[np.maximum(tier, 0)] * rng.lognormal(0.0, 0.2, n), 0.5
    )
    review = rng.lognormal(math.log(3.0), 0.5, n)
    label_ts: IntArray = np.where(labelled, ts + ((delivery + review) * DAY).astype(np.int64), -1)
    return label_ts


def _legit_ips(
    pop: Population, buyer: IntArray, ts: IntArray, app: NDArray[np.bool_], u: FloatArray
) -> tuple[list[str], list[str]]:
    rng = pop.rng
    n = len(buyer)
    on_trip = (ts >= pop.trip_start[buyer]) & (ts < pop.trip_end[buyer])
    # 0 home line, 1 mobile network, 2 VPN exit, 3 abroad on a trip, 4 another address on the same ISP
    kind = np.select([on_trip, u < 0.03, app & (u < 0.45), u < 0.8], [3, 2, 1, 0], default=4)
    hosting, abroad = list(HOSTING.items()), list(ABROAD.items())
    vpn = rng.integers(0, len(hosting), n).tolist()
    pick = rng.random(n).tolist()
    o3 = rng.integers(0, 256, n).tolist()
    o4 = rng.integers(1, 255, n).tolist()
    trip, isp, home_ip = pop.trip_country[buyer].tolist(), pop.isp[buyer].tolist(), pop.home_ip
    ips: list[str] = []
    countries: list[str] = []
    prefixes: tuple[str, ...]
    for i, (b, k) in enumerate(zip(buyer.tolist(), kind.tolist(), strict=True)):
        if k == 0:
            ips.append(home_ip[b])
            countries.append("RU")
            continue
        if k == 1:
            country, prefixes = "RU", RU_MOBILE
        elif k == 2:
            country, prefixes = hosting[vpn[i]]
        elif k == 3:
            country, prefixes = abroad[trip[i]]
        else:
            country, prefixes = "RU", (RU_HOME[isp[i]],)
        ips.append(f"{prefixes[int(pick[i] * len(prefixes))]}.{o3[i]}.{o4[i]}")
        countries.append(country)
    return ips, countries


def _legit_items(
    pop: Population, seller: IntArray, cny: NDArray[np.bool_]
) -> tuple[list[list[Item]], list[float], NDArray[np.bool_]]:
    """Catalogue lines, order amounts, and which orders are gift cards only (nothing to ship)."""
    rng = pop.rng
    n = len(seller)
    lines = 1 + weighted(rng, np.array([0.72, 0.19, 0.09]), n)
    cats = np.where(
        rng.random((n, 3)) < 0.75,
        pop.seller_primary[seller][:, None],
        pop.seller_secondary[seller][:, None],
    )
    rub = rub_prices(rng, cats.ravel(), rng.standard_normal(3 * n)).reshape(n, 3)
    price = to_currency(rub, np.broadcast_to(cny[:, None], (n, 3)))
    sku = (pop.seller_skus[seller][:, None] * rng.random((n, 3)) ** 2).astype(np.int64)
    max_qty = CAT_MAX_QTY[cats]
    qty = np.where(rng.random((n, 3)) < 0.18, np.minimum(rng.integers(2, 6, (n, 3)), max_qty), 1)
    used = np.arange(3)[None, :] < lines[:, None]
    digital = ((cats == GIFT) | ~used).all(axis=1)
    amounts = np.round((qty * price * used).sum(axis=1), 2).tolist()
    # Flat lists of the used lines (row by row), then sliced per order: much cheaper than nested lists.
    row, col = np.nonzero(used)
    codes, names = pop.seller_code, CAT_NAMES
    flat = [
        {"sku": f"{codes[s]}-{k:05d}", "category": names[c], "quantity": q, "unit_price": p}
        for s, c, k, q, p in zip(
            seller[row].tolist(),
            cats[row, col].tolist(),
            sku[row, col].tolist(),
            qty[row, col].tolist(),
            price[row, col].tolist(),
            strict=True,
        )
    ]
    ends = np.cumsum(lines).tolist()
    items = [flat[end - k : end] for end, k in zip(ends, lines.tolist(), strict=True)]
    return items, amounts, digital
