"""The six fraud patterns, generated episode by episode on top of the legit population.

Each pattern draws its episodes (when, how many orders, which cards, devices, accounts and
addresses) from the population's generator and appends its orders to its own `Columns`, in the
fixed order `FraudPatterns.run` calls them. Chargebacks arrive days to weeks later; friendly fraud
disputes after delivery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dozor.domain.clock import DAY, HOUR, MINUTE
from dozor.domain.contracts import RUB_PER_UNIT
from dozor_training.fraud.sim_config import PATTERNS
from dozor_training.fraud.sim_population import Population
from dozor_training.fraud.sim_tables import (
    BINS,
    CAT,
    CAT_MEDIAN,
    DELIVERY_DAYS,
    DISPOSABLE_DOMAINS,
    FRAUD_EMAIL_DOMAINS,
    FRAUD_HOURLY_MSK,
    GIFT,
    HOSTING,
    LEGIT_HOURLY,
    MSK_OFFSET,
    RU_HOME,
    RU_HOSTING,
    RU_MOBILE,
    STOLEN_FOREIGN_CARD_COUNTRIES,
    Columns,
    FloatArray,
    Item,
    item_line,
    rub_prices,
    table_p,
    weighted,
)


class FraudPatterns:
    """Fraud orders for one population; `drops` are the reshipping flats, drawn first."""

    def __init__(self, pop: Population, reshipping_budget: int) -> None:
        self.pop = pop
        self.rng = pop.rng
        self.drops = self._drop_addresses(reshipping_budget)
        self.columns = Columns()

    def run(self, budgets: Mapping[str, int]) -> Columns:
        """Every pattern's orders for its budget, in a fixed order (the draws depend on it)."""
        self._reshipping(budgets["reshipping"])
        self._stolen_card_burst(budgets["stolen_card_burst"])
        self._card_testing(budgets["card_testing"])
        self._account_takeover(budgets["account_takeover"])
        self._colluding_seller(budgets["colluding_seller"])
        self._friendly_fraud(budgets["friendly_fraud"])
        return self.columns

    # ---- fraud: shared pieces

    def _emit(
        self,
        ts: int,
        buyer: int,
        seller: int,
        *,
        ip: tuple[str, str],
        device: str | None,
        channel: str,
        card: int,
        address: int,
        items: list[Item],
        pattern: str,
        label_ts: int,
        phone: str | None = None,
    ) -> None:
        f = self.columns
        cny = bool(self.rng.random() < 0.05)  # fraudsters check out in yuan now and then, as buyers do
        if cny:
            for line in items:
                line["unit_price"] = round(line["unit_price"] / RUB_PER_UNIT["CNY"], 2)
        f.ts.append(ts)
        f.buyer.append(buyer)
        f.phone.append(phone if phone is not None else self.pop.buyer_phone[buyer])
        f.seller.append(seller)
        f.cny.append(cny)
        f.ip.append(ip[0])
        f.ip_country.append(ip[1])
        f.device.append(device)
        f.channel.append(channel)
        f.method.append("card")
        f.card.append(card)
        f.address.append(address)
        f.items.append(items)
        f.amount.append(round(sum(i["quantity"] * i["unit_price"] for i in items), 2))
        f.pattern.append(PATTERNS.index(pattern))
        f.label_ts.append(label_ts)

    def _pick(self, options: Sequence[str], weights: Sequence[float]) -> str:
        return options[int(weighted(self.rng, np.asarray(weights, dtype=float), 1)[0])]

    def _episode_start(self, duration: int) -> int:
        """When a fraud episode starts: busier days draw more fraud; hours by the fraudsters' clock."""
        rng = self.rng
        day = int(weighted(rng, self.pop.day_volume, 1)[0])
        hour = int(weighted(rng, FRAUD_HOURLY_MSK, 1)[0])
        ts = self.pop.wrap(self.pop.t0 + day * DAY + (hour - MSK_OFFSET) * HOUR + int(rng.integers(0, HOUR)))
        return max(self.pop.t0, min(ts, self.pop.t1 - duration - 1))

    def _offsets(self, n: int, duration: int) -> list[int]:
        offsets = np.sort(self.rng.integers(0, max(duration, 1), n))
        offsets[0] = 0
        return list(offsets.tolist())

    def _signup_lead(self) -> int:
        """Seconds between a fraud account's sign-up and its first order: minutes, or a sleeper."""
        rng = self.rng
        if rng.random() < 0.85:
            return int(rng.integers(1, 90)) * MINUTE
        return int(rng.integers(3, 60)) * DAY

    def _chargeback(self, ts: int, median_days: float, sigma: float = 0.5) -> int:
        days = max(2.0, float(self.rng.lognormal(math.log(median_days), sigma)))
        return ts + int(days * DAY)

    def _fraud_buyer(self, created: int, disposable_p: float = 0.45) -> int:
        """A new account: throwaway or random-looking email, often no phone."""
        rng = self.rng
        a, b, c, d = rng.random(4).tolist()
        if d < 0.25:  # a bought or farmed account with a plausible name
            email: str | None = self.pop.legit_emails(1)[0]
        else:
            letters = "".join(chr(97 + x) for x in rng.integers(0, 26, int(rng.integers(5, 10))).tolist())
            local = letters + (str(int(rng.integers(10, 100_000))) if b < 0.7 else "")
            domains = DISPOSABLE_DOMAINS if a < disposable_p else FRAUD_EMAIL_DOMAINS
            email = self.pop.unique_email(local, domains[int(c * len(domains))]) if b < 0.97 else None
        self.pop.buyer_id.extend(self.pop.ids.hex("buyer", "u_", 1))
        self.pop.buyer_email.append(email)
        self.pop.buyer_phone.append(self.pop.phones(1)[0] if rng.random() < 0.5 else None)
        self.pop.buyer_created.append(created)
        return len(self.pop.buyer_id) - 1

    def _ip(self, prefixes: Sequence[str], country: str) -> tuple[str, str]:
        p, a, b = self.rng.integers(0, [len(prefixes), 256, 254]).tolist()
        return f"{prefixes[p]}.{a}.{b + 1}", country

    def _fraud_ip(self, residential: float = 0.45) -> tuple[str, str]:
        """Residential proxies look like anyone in Russia; hosting and foreign exits do not."""
        u = self.rng.random()
        if u < residential:
            return self._ip(RU_HOME, "RU")
        if u < residential + 0.15:
            return self._ip(RU_HOSTING, "RU")
        if u < residential + 0.25:
            return self._ip(RU_MOBILE, "RU")
        country = self._pick(list(HOSTING), [1.0] * len(HOSTING))
        return self._ip(HOSTING[country], country)

    def _stolen_card(self, foreign_p: float) -> int:
        if self.rng.random() < foreign_p:
            names, p = table_p(STOLEN_FOREIGN_CARD_COUNTRIES)
            return self.pop.new_card(self._pick(names, p.tolist()))
        return self.pop.new_card("RU")

    def _device(self, app_p: float) -> tuple[str, bool]:
        app = bool(self.rng.random() < app_p)
        return self.pop.ids.devices([app])[0], app

    def _seller_for(self, cat: int) -> int:
        sellers = self.pop.cat_sellers[cat]
        if not len(sellers):
            sellers = np.arange(len(self.pop.seller_weight))
        return int(sellers[weighted(self.rng, self.pop.seller_weight[sellers], 1)[0]])

    def _items(self, cat: int, seller: int, *, dear: float = 0.3) -> list[Item]:
        """One line, priced from the upper part of the category's range (resellable goods)."""
        rng = self.rng
        z = abs(float(rng.standard_normal())) + dear
        price = float(rub_prices(rng, np.array([cat]), np.array([z]))[0])
        sku = int(self.pop.seller_skus[seller] * float(rng.random()) ** 2)
        qty = int(rng.integers(1, 4)) if cat == GIFT else 1
        return [item_line(f"{self.pop.seller_code[seller]}-{sku:05d}", cat, qty, price)]

    def _risky_category(self, weights: Mapping[str, float]) -> int:
        return CAT[self._pick(list(weights), list(weights.values()))]

    def _drop_addresses(self, reshipping_budget: int) -> list[tuple[int, int, int]]:
        """Flats where parcels for strangers pile up: (address, active from, active until)."""
        rng = self.rng
        n = max(2, round(reshipping_budget / 12))
        span = self.pop.t1 - self.pop.t0
        drops = []
        for _ in range(n):
            region = (
                int(
                    rng.choice(
                        self.pop.capital_idx,
                        p=self.pop.pop_p[self.pop.capital_idx] / self.pop.pop_p[self.pop.capital_idx].sum(),
                    )
                )
                if rng.random() < 0.5
                else int(weighted(rng, self.pop.pop_p, 1)[0])
            )
            length = min(span, int(rng.integers(7, 29)) * DAY)
            start = self.pop.t0 + int(rng.integers(0, span - length + 1))
            drops.append((self.pop.new_address(region), start, start + length))
        return drops

    def _fraud_address(self, drop_p: float, region_p: FloatArray) -> int:
        rng = self.rng
        if rng.random() < drop_p:
            return self.drops[int(rng.integers(len(self.drops)))][0]
        return self.pop.new_address(int(weighted(rng, region_p, 1)[0]))

    # ---- fraud patterns

    def _stolen_card_burst(self, budget: int) -> None:
        """One stolen card, several new accounts and devices, an hour or two, dear resellable goods."""
        rng = self.rng
        goods = {"phones": 0.35, "electronics": 0.35, "gift_cards": 0.2, "computers": 0.1}
        while budget > 0:
            n = min(budget, int(rng.integers(3, 9)))
            budget -= n
            card = self._stolen_card(foreign_p=0.55)
            duration = int(rng.integers(20, 121)) * MINUTE
            start = self._episode_start(duration)
            accounts: list[tuple[int, str, bool]] = []
            for off in self._offsets(n, duration):
                ts = start + off
                if accounts and rng.random() < 0.25:
                    buyer, device, app = accounts[int(rng.integers(len(accounts)))]
                else:
                    if accounts and rng.random() < 0.3:
                        _, device, app = accounts[int(rng.integers(len(accounts)))]
                    else:
                        device, app = self._device(app_p=0.3)
                    buyer = self._fraud_buyer(ts - self._signup_lead())
                    accounts.append((buyer, device, app))
                cat = self._risky_category(goods)
                seller = self._seller_for(cat)
                self._emit(
                    ts,
                    buyer,
                    seller,
                    ip=self._fraud_ip(),
                    device=device,
                    channel="app" if app else "web",
                    card=card,
                    address=-1 if cat == GIFT else self._fraud_address(0.2, self.pop.pop_p),
                    items=self._items(cat, seller),
                    pattern="stolen_card_burst",
                    label_ts=self._chargeback(ts, 20.0),
                )

    def _card_testing(self, budget: int) -> None:
        """A script on one device and IP trying many cards (often one BIN range) with tiny orders."""
        rng = self.rng
        names, p = table_p(STOLEN_FOREIGN_CARD_COUNTRIES)
        while budget > 0:
            n = min(budget, int(rng.integers(8, 41)))
            budget -= n
            duration = int(rng.integers(3, 26)) * MINUTE
            start = self._episode_start(duration)
            api = bool(rng.random() < 0.5)
            device = None if api and rng.random() < 0.6 else self._device(app_p=0.0)[0]
            ip = self._fraud_ip(residential=0.3)
            accounts = [
                self._fraud_buyer(start - self._signup_lead(), 0.6) for _ in range(int(rng.integers(1, 4)))
            ]
            country = "RU" if rng.random() < 0.4 else self._pick(names, p.tolist())
            bins = [
                BINS[country][int(rng.integers(len(BINS[country])))] for _ in range(int(rng.integers(1, 4)))
            ]
            digital = bool(rng.random() < 0.6)
            cat = GIFT if digital else CAT["accessories"]
            seller = self._seller_for(cat)
            address = -1 if digital else self.pop.new_address(int(weighted(rng, self.pop.pop_p, 1)[0]))
            cards: list[int] = []
            for off in self._offsets(n, duration):
                ts = start + off
                if cards and rng.random() < 0.2:
                    card = cards[int(rng.integers(len(cards)))]
                else:
                    card = self.pop.new_card(country, bins[int(rng.integers(len(bins)))])
                    cards.append(card)
                price = (
                    float(rng.choice([100.0, 150.0, 200.0, 300.0, 500.0]))
                    if digital
                    else 49.0 + 10 * int(rng.integers(0, 26))
                )
                sku = f"{self.pop.seller_code[seller]}-{int(rng.integers(0, 20)):05d}"
                self._emit(
                    ts,
                    accounts[int(rng.integers(len(accounts)))],
                    seller,
                    ip=ip,
                    device=device,
                    channel="api" if api else "web",
                    card=card,
                    address=address,
                    items=[item_line(sku, cat, 1, price)],
                    pattern="card_testing",
                    label_ts=self._chargeback(ts, 12.0),
                )

    def _account_takeover(self, budget: int) -> None:
        """An old account suddenly on a new device and IP, shipping dear goods somewhere new."""
        rng = self.rng
        if budget <= 0:
            return
        n_pop = self.pop.n_legit_buyers
        eligible = np.flatnonzero(self.pop.created[:n_pop] < self.pop.t0 - 180 * DAY)
        if not len(eligible):
            eligible = np.flatnonzero(~self.pop.is_new)
        w = self.pop.weight[eligible]
        victims = rng.choice(eligible, size=min(budget, len(eligible)), replace=False, p=w / w.sum()).tolist()
        goods = {"phones": 0.3, "electronics": 0.3, "computers": 0.15, "jewelry": 0.1, "gift_cards": 0.15}
        k = 0
        while budget > 0:
            n = min(budget, 1 + int(weighted(rng, np.array([0.5, 0.3, 0.2]), 1)[0]))
            budget -= n
            victim = victims[k % len(victims)]
            k += 1
            duration = int(rng.integers(10, 180)) * MINUTE
            start = self._episode_start(duration)
            device, app = self._device(app_p=0.4)
            u = rng.random()
            ip = self._ip(*self._pick_hosting()) if u < 0.35 else self._fraud_ip(residential=0.6)
            phone = self.pop.phones(1)[0] if rng.random() < 0.6 else None  # the attacker's own number
            address = self._fraud_address(0.45, self.pop.remote_p)
            stored = int(self.pop.card0[victim])
            card = stored if stored >= 0 and rng.random() < 0.7 else self._stolen_card(foreign_p=0.4)
            for off in self._offsets(n, duration):
                ts = start + off
                cat = self._risky_category(goods)
                seller = self._seller_for(cat)
                self._emit(
                    ts,
                    victim,
                    seller,
                    ip=ip,
                    device=device,
                    channel="app" if app else "web",
                    card=card,
                    address=-1 if cat == GIFT else address,
                    items=self._items(cat, seller, dear=0.6),
                    pattern="account_takeover",
                    label_ts=self._chargeback(ts, 6.0),
                    phone=phone,
                )

    def _pick_hosting(self) -> tuple[tuple[str, ...], str]:
        country = self._pick(list(HOSTING), [1.0] * len(HOSTING))
        return HOSTING[country], country

    def _reshipping(self, budget: int) -> None:
        """Drop flats receiving for many different new buyers, each on its own card, over weeks."""
        rng = self.rng
        if budget <= 0:
            return
        goods = {"phones": 0.3, "electronics": 0.3, "computers": 0.15, "shoes": 0.15, "jewelry": 0.1}
        quota = rng.integers(5, 26, len(self.drops)).astype(float)
        counts = np.floor(quota / quota.sum() * budget).astype(int)
        counts[: budget - int(counts.sum())] += 1
        for (address, begin, end), n in zip(self.drops, counts.tolist(), strict=True):
            operators = [self._device(app_p=0.5) for _ in range(int(rng.integers(1, 3)))]
            for ts in np.sort(rng.integers(begin, end, n)).tolist():
                if rng.random() < 0.2:
                    device, app = operators[int(rng.integers(len(operators)))]
                else:
                    device, app = self._device(app_p=0.5)
                u = rng.random()
                ip = (
                    self._ip(RU_HOME, "RU")
                    if u < 0.7
                    else self._ip(RU_MOBILE, "RU")
                    if u < 0.85
                    else self._fraud_ip()
                )
                cat = self._risky_category(goods)
                seller = self._seller_for(cat)
                self._emit(
                    ts,
                    self._fraud_buyer(ts - self._signup_lead(), 0.35),
                    seller,
                    ip=ip,
                    device=device,
                    channel="app" if app else "web",
                    card=self._stolen_card(foreign_p=0.35),
                    address=address,
                    items=self._items(cat, seller),
                    pattern="reshipping",
                    label_ts=self._chargeback(ts, 20.0),
                )

    def _colluding_seller(self, budget: int) -> None:
        """A small seller and a ring of fake buyers (few cards, few devices) buying its items in bursts."""
        rng = self.rng
        if budget <= 0:
            return
        small = np.flatnonzero(self.pop.seller_weight <= np.median(self.pop.seller_weight))
        sellers = rng.choice(small, size=min(max(1, round(budget / 80)), len(small)), replace=False).tolist()
        counts = np.full(len(sellers), budget // len(sellers))
        counts[: budget - int(counts.sum())] += 1
        for seller, n_orders in zip(sellers, counts.tolist(), strict=True):
            region = int(weighted(rng, self.pop.pop_p, 1)[0])
            cards = [
                self.pop.new_card("RU" if rng.random() < 0.85 else "KZ")
                for _ in range(int(rng.integers(2, 4)))
            ]
            devices = [self._device(app_p=0.6) for _ in range(int(rng.integers(1, 4)))]
            ips = [self._ip(RU_HOME, "RU") for _ in range(int(rng.integers(1, 3)))]
            addresses = [self.pop.new_address(region) for _ in range(int(rng.integers(1, 4)))]
            accounts: list[int | None] = [None] * int(rng.integers(4, 13))
            cat = int(self.pop.seller_primary[seller])
            skus = [
                int(self.pop.seller_skus[seller] * float(rng.random()) ** 2)
                for _ in range(int(rng.integers(1, 4)))
            ]
            bursts = []
            quota = n_orders
            while quota > 0:
                m = min(quota, int(rng.integers(5, 21)))
                quota -= m
                duration = int(rng.integers(1, 5)) * HOUR
                bursts.append((self._episode_start(duration), m, duration))
            for start, m, duration in sorted(bursts):  # in time order, so accounts exist before they buy
                for off in self._offsets(m, duration):
                    ts = start + off
                    a = int(rng.integers(len(accounts)))
                    if accounts[a] is None:
                        accounts[a] = self._fraud_buyer(ts - int(rng.integers(1, 72)) * HOUR, 0.2)
                    buyer = accounts[a]
                    assert buyer is not None
                    device, app = devices[int(rng.integers(len(devices)))]
                    price = float(CAT_MEDIAN[cat]) * float(rng.uniform(1.5, 4.0))
                    price = math.ceil(price / 10) * 10 - 1.0
                    sku = f"{self.pop.seller_code[seller]}-{skus[int(rng.integers(len(skus)))]:05d}"
                    self._emit(
                        ts,
                        buyer,
                        seller,
                        ip=ips[int(rng.integers(len(ips)))],
                        device=device,
                        channel="app" if app else "web",
                        card=cards[int(rng.integers(len(cards)))],
                        address=-1 if cat == GIFT else addresses[int(rng.integers(len(addresses)))],
                        items=[item_line(sku, cat, int(rng.integers(1, 3)), price)],
                        pattern="colluding_seller",
                        label_ts=self._chargeback(ts, 30.0),
                    )

    def _friendly_fraud(self, budget: int) -> None:
        """A real repeat buyer, on their own device, card and address, who disputes after delivery."""
        rng = self.rng
        if budget <= 0:
            return
        n_pop = self.pop.n_legit_buyers
        eligible = np.flatnonzero(
            (self.pop.created[:n_pop] < self.pop.t0 - 60 * DAY) & (self.pop.card0[:n_pop] >= 0)
        )
        w = self.pop.weight[eligible]
        buyers = rng.choice(eligible, size=min(budget, len(eligible)), replace=False, p=w / w.sum()).tolist()
        goods = {"electronics": 0.35, "clothing": 0.2, "shoes": 0.15, "phones": 0.15, "beauty": 0.15}
        for k in range(budget):
            b = buyers[k % len(buyers)]
            day = int(weighted(rng, self.pop.day_volume, 1)[0])
            local = int(weighted(rng, LEGIT_HOURLY, 1)[0]) * HOUR + int(rng.integers(0, HOUR))
            ts = self.pop.wrap(
                self.pop.t0 + day * DAY + local - int(self.pop.reg_offset[self.pop.region[b]]) * HOUR
            )
            app = bool(self.pop.app0[b])
            cat = self._risky_category(goods)
            seller = self._seller_for(cat)
            address = int(self.pop.home[b])
            delivered = DELIVERY_DAYS[int(self.pop.reg_tier[self.pop.addr_region[address]])] * float(
                rng.lognormal(0, 0.2)
            )
            self._emit(
                ts,
                b,
                seller,
                ip=(self.pop.home_ip[b], "RU"),
                device=self.pop.dev0[b],
                channel="app" if app else "web",
                card=int(self.pop.card0[b]),
                address=address,
                items=self._items(cat, seller, dear=0.0),
                pattern="friendly_fraud",
                label_ts=ts + int(delivered * DAY) + self._chargeback(0, 15.0),
            )
