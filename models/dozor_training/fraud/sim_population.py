"""Who is on the marketplace: sellers, the legit buyers and their cards, devices and addresses.

Built column-wise with NumPy from the one generator, in a fixed order (sellers, then buyers), so a
seed always gives the same population. The entity tables are lists because the fraud patterns
append accounts, cards and addresses to them one by one; orders refer to rows by index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, timedelta

import numpy as np

from dozor.domain.clock import DAY, HOUR
from dozor.domain.geography import REGIONS
from dozor_training.fraud.sim_config import CAPITAL_REGIONS, SimulationConfig
from dozor_training.fraud.sim_tables import (
    ABROAD,
    BINS,
    CAT_SELLER_SHARE,
    CATEGORIES,
    DISPOSABLE_DOMAINS,
    EMAIL_DOMAIN_P,
    EMAIL_DOMAINS,
    FEMALE_FIRST,
    LAST,
    LEGIT_CARD_COUNTRIES,
    LEGIT_HOURLY,
    MALE_FIRST,
    MSK_OFFSET,
    RU_HOME,
    STREET_KINDS,
    STREETS,
    STREETS_ANY_KIND,
    WEEKLY,
    FloatArray,
    Ids,
    IntArray,
    table_p,
    weighted,
)


class Population:
    """Sellers, buyers, cards, devices and addresses; `rng` and `ids` are shared with the orders."""

    def __init__(self, cfg: SimulationConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.ids = Ids(self.rng)
        self.t0 = int(cfg.start.timestamp())
        self.t1 = self.t0 + cfg.days * DAY

        regions = list(REGIONS.values())
        self.regions = regions
        self.reg_offset = np.array([r.utc_offset for r in regions], dtype=np.int64)
        self.reg_tier = np.array([r.tier for r in regions], dtype=np.int64)
        pop = np.array([r.population for r in regions])
        capital = np.array([r.code in CAPITAL_REGIONS for r in regions])
        self.pop_p = pop / pop.sum()
        self.legit_region_p = np.where(
            capital,
            cfg.capital_share * pop / pop[capital].sum(),
            (1 - cfg.capital_share) * pop / pop[~capital].sum(),
        )
        remote_bias = np.array([1.0, 1.0, 1.8, 3.0])[self.reg_tier]
        self.remote_p = self.pop_p * remote_bias / (self.pop_p * remote_bias).sum()
        self.capital_idx = np.flatnonzero(capital)

        # Entity tables (lists, since fraud episodes append to them one by one).
        self.buyer_id: list[str] = []
        self.buyer_email: list[str | None] = []
        self.buyer_phone: list[str | None] = []
        self.buyer_created: list[int] = []
        self.card_fp: list[str] = []
        self.card_bin: list[str] = []
        self.card_country: list[str] = []
        self.addr_region: list[int] = []
        self.addr_city: list[str] = []
        self.addr_postal: list[str] = []
        self.addr_line: list[str] = []
        self.emails_seen: set[str] = set()
        self.email_uses: dict[str, int] = {}  # per base address, how many have been handed out

        self.day_volume = self._day_volumes()
        self._build_sellers()
        self._build_buyers()

    def _day_volumes(self) -> FloatArray:
        cfg = self.cfg
        first = cfg.start.astimezone(UTC).date()
        vol = np.empty(cfg.days)
        for d in range(cfg.days):
            day = first + timedelta(days=d)
            peak = {11: cfg.peak_multiplier, 10: 1.25, 12: 1.5}.get(day.day, 1.0) if day.month == 11 else 1.0
            vol[d] = cfg.orders_per_day * WEEKLY[day.weekday()] * peak
        return vol * np.exp(self.rng.normal(0.0, 0.04, cfg.days))

    # ---- entities

    def _build_sellers(self) -> None:
        rng = self.rng
        n = int(np.clip(self.cfg.orders_per_day / 10, 150, 800))
        self.seller_weight = np.minimum(rng.pareto(1.1, n) + 1.0, 400.0)
        primary = weighted(rng, CAT_SELLER_SHARE, n)
        primary[rng.permutation(n)[: len(CATEGORIES)]] = np.arange(len(CATEGORIES))  # every category sold
        self.seller_primary = primary
        self.seller_secondary = weighted(rng, CAT_SELLER_SHARE, n)
        self.seller_skus = np.clip(20 + self.seller_weight * 15, 20, 3000).astype(np.int64)
        self.seller_id = self.ids.hex("seller", "slr_", n)
        # SKU prefix: six hex digits of the seller id, or all sixteen where six are not unique.
        codes = [s[4:10].upper() for s in self.seller_id]
        taken = Counter(codes)
        self.seller_code = [
            c if taken[c] == 1 else s[4:].upper() for c, s in zip(codes, self.seller_id, strict=True)
        ]
        self.cat_sellers: list[IntArray] = [np.flatnonzero(primary == c) for c in range(len(CATEGORIES))]

    def _build_buyers(self) -> None:
        """The legit population: long-standing buyers plus accounts opened during the window.

        The steps draw in this order (accounts, addresses, devices, households, cards, contacts);
        changing it changes every history.
        """
        self._buyer_accounts()
        self._buyer_addresses()
        self._buyer_devices()
        self._households()
        self._buyer_cards()
        self._buyer_contacts()

    def _buyer_accounts(self) -> None:
        """When each account was opened, where its owner lives, how active it is."""
        rng, cfg = self.rng, self.cfg
        n_old = max(400, cfg.orders_per_day * 12)
        age = np.clip(rng.exponential(2.0 * 365 * DAY, n_old), 7 * DAY, 9 * 365 * DAY)
        created_old = self.t0 - age.astype(np.int64)
        new_per_day = rng.poisson(0.03 * self.day_volume)
        day = np.repeat(np.arange(cfg.days), new_per_day)
        hour = weighted(rng, LEGIT_HOURLY, len(day))
        created_new = self.t0 + day * DAY + (hour - MSK_OFFSET) * HOUR + rng.integers(0, HOUR, len(day))
        created_new = np.minimum(self.t0 + (created_new - self.t0) % (self.t1 - self.t0), self.t1 - 2 * HOUR)
        created = np.sort(np.concatenate([created_old, created_new]))
        n = len(created)
        self.n_legit_buyers = n
        self.created = created
        self.is_new = created >= self.t0

        self.region = weighted(rng, self.legit_region_p, n)
        self.weight = rng.lognormal(0.0, 1.0, n)
        self.api_buyer = rng.random(n) < 0.005  # resellers ordering through the partner API
        self.weight[self.api_buyer] *= 5
        self.cny_buyer = rng.random(n) < 0.08

    def _buyer_addresses(self) -> None:
        """A home, or a pickup point shared with neighbours; some have a second address."""
        rng, region, n = self.rng, self.region, self.n_legit_buyers
        pickup = rng.random(n) < 0.25
        home = np.empty(n, dtype=np.int64)
        for r in range(len(self.regions)):
            members = np.flatnonzero(pickup & (region == r))
            if len(members):
                points = self.new_addresses(np.full(-(-len(members) // 30), r), pickup=True)
                home[members] = points[rng.integers(0, len(points), len(members))]
        own = np.flatnonzero(~pickup)
        home[own] = self.new_addresses(region[own])
        second = np.full(n, -1, dtype=np.int64)
        has_second = np.flatnonzero(rng.random(n) < 0.15)
        second_region = np.where(
            rng.random(len(has_second)) < 0.7, region[has_second], weighted(rng, self.pop_p, len(has_second))
        )
        second[has_second] = self.new_addresses(second_region)
        self.home, self.second = home, second

    def _buyer_devices(self) -> None:
        """One or two devices each: app devices and web browsers."""
        rng, n = self.rng, self.n_legit_buyers
        self.n_dev = 1 + (rng.random(n) < 0.35)
        self.app0 = rng.random(n) < 0.62
        self.app1 = rng.random(n) < 0.5
        self.dev0 = self.ids.devices(self.app0.tolist())
        self.dev1: list[str | None] = [None] * n
        two = np.flatnonzero(self.n_dev == 2)
        for i, d in zip(two.tolist(), self.ids.devices(self.app1[two].tolist()), strict=True):
            self.dev1[i] = d

    def _households(self) -> None:
        """Partners share the home address (and region) and one device."""
        rng = self.rng
        old = np.flatnonzero(~self.is_new)
        members = rng.choice(old, size=len(old) // 25, replace=False) if len(old) >= 50 else old[:0]
        partners = rng.choice(old, size=len(members))
        keep = members != partners
        members, partners = members[keep], partners[keep]
        self.region[members] = self.region[partners]
        self.home[members] = self.home[partners]
        for m, p in zip(members.tolist(), partners.tolist(), strict=True):
            self.dev1[m] = self.dev0[p]
            self.app1[m] = self.app0[p]
        self.n_dev[members] = 2

    def _buyer_cards(self) -> None:
        """None, one or two cards, mostly Russian; the usual payment method follows from them."""
        rng, n = self.rng, self.n_legit_buyers
        n_cards = weighted(rng, np.array([0.10, 0.55, 0.35]), n)
        names, p = table_p(LEGIT_CARD_COUNTRIES)
        card0 = np.full(n, -1, dtype=np.int64)
        card1 = np.full(n, -1, dtype=np.int64)
        with_one = np.flatnonzero(n_cards >= 1)
        card0[with_one] = self.new_cards([names[i] for i in weighted(rng, p, len(with_one))])
        with_two = np.flatnonzero(n_cards == 2)
        card1[with_two] = self.new_cards([names[i] for i in weighted(rng, p, len(with_two))])
        self.card0, self.card1 = card0, card1
        self.method_pref = np.where(
            n_cards > 0,
            weighted(rng, np.array([0.70, 0.14, 0.07, 0.06, 0.03]), n),
            1 + weighted(rng, np.array([0.60, 0.25, 0.0, 0.15]), n),
        )

    def _buyer_contacts(self) -> None:
        """E-mail, id, phone, home internet and trips abroad."""
        rng, n = self.rng, self.n_legit_buyers
        emails = self.legit_emails(n)
        self.buyer_email.extend(
            e if has else None for e, has in zip(emails, rng.random(n) < 0.96, strict=True)
        )
        self.buyer_id.extend(self.ids.hex("buyer", "u_", n))
        phones = self.phones(n)
        self.buyer_phone.extend(
            p if keep_phone else None for p, keep_phone in zip(phones, rng.random(n) < 0.75, strict=True)
        )
        self.buyer_created.extend(self.created.tolist())
        self.isp = rng.integers(0, len(RU_HOME), n)
        self.home_ip = [
            f"{RU_HOME[a]}.{b}.{c}"
            for a, b, c in zip(
                self.isp.tolist(),
                rng.integers(0, 256, n).tolist(),
                rng.integers(1, 255, n).tolist(),
                strict=True,
            )
        ]
        traveller = rng.random(n) < 0.05
        self.trip_start = np.where(traveller, rng.integers(self.t0 - 10 * DAY, self.t1, n), 0)
        self.trip_end = np.where(traveller, self.trip_start + rng.integers(5 * DAY, 16 * DAY, n), 0)
        self.trip_country = rng.integers(0, len(ABROAD), n)

    def new_address(self, region: int) -> int:
        return int(self.new_addresses(np.array([region]))[0])

    def new_addresses(self, regions: IntArray, *, pickup: bool = False) -> IntArray:
        rng = self.rng
        n = len(regions)
        first = len(self.addr_line)
        u = rng.random((n, 6)).tolist()
        for r, (a, b, c, d, e, f) in zip(regions.tolist(), u, strict=True):
            reg = self.regions[r]
            city = reg.towns[int(b * len(reg.towns))] if reg.towns and a < 0.45 else reg.city
            prefix = reg.postal_prefixes[int(c * len(reg.postal_prefixes))]
            if d < 0.6:
                street = f"ул. {STREETS[int(e * len(STREETS))]}"
            else:
                kind = STREET_KINDS[int(d * 1e3) % len(STREET_KINDS)]
                street = f"{kind} {STREETS_ANY_KIND[int(e * len(STREETS_ANY_KIND))]}"
            house = 1 + int(f * f * 120)
            if pickup:
                line = f"пункт выдачи, {street}, д. {house}"
            else:
                building = f"{house}к{1 + int(a * 1000) % 4}" if b < 0.2 else str(house)
                line = f"{street}, д. {building}, кв. {1 + int(c * 997) % 240}"
            self.addr_region.append(r)
            self.addr_city.append(city)
            self.addr_postal.append(f"{prefix}{int(e * 1e6) % 1000:03d}")
            self.addr_line.append(line)
        return np.arange(first, first + n, dtype=np.int64)

    def new_cards(self, countries: Sequence[str], bins: Sequence[str] | None = None) -> IntArray:
        first = len(self.card_fp)
        picks = self.rng.random(len(countries)).tolist()
        self.card_fp.extend(self.ids.hex("card", "fp_", len(countries)))
        for i, (country, u) in enumerate(zip(countries, picks, strict=True)):
            options = BINS[country] if bins is None else (bins[i],)
            self.card_bin.append(options[int(u * len(options))])
            self.card_country.append(country)
        return np.arange(first, first + len(countries), dtype=np.int64)

    def new_card(self, country: str, bin_: str | None = None) -> int:
        return int(self.new_cards([country], None if bin_ is None else [bin_])[0])

    def phones(self, n: int) -> list[str]:
        return [f"+79{v % 1_000_000_000:09d}" for v in self.ids.raw("phone", n)]

    def legit_emails(self, n: int) -> list[str]:
        """Addresses real people have: names, birth years, phone numbers, nicknames; a few throwaways."""
        rng = self.rng
        female = (rng.random(n) < 0.55).tolist()
        a, b, c, d = rng.random((4, n)).tolist()
        domains = [EMAIL_DOMAINS[i] for i in weighted(rng, EMAIL_DOMAIN_P, n).tolist()]
        throwaway = (rng.random(n) < 0.005).tolist()
        out = []
        for i in range(n):
            ai, bi, ci, di = a[i], b[i], c[i], d[i]
            names = FEMALE_FIRST if female[i] else MALE_FIRST
            first = names[int(ai * len(names))]
            last = LAST[int(bi * len(LAST))] + ("a" if female[i] else "")
            sep = "." if ci < 0.5 else "_"
            if di < 0.32:
                local = f"{first}{sep}{last}"
            elif di < 0.62:
                local = f"{first}{sep}{last}{1970 + int(ci * 1000) % 36}"
            elif di < 0.86:
                local = f"{first[0]}{last}{int(bi * 1e6) % 1000}"
            elif di < 0.93:  # the phone number as the mailbox name, common on mail.ru
                local = f"79{int(ci * 1e12) % 1_000_000_000:09d}"
            else:  # a nickname
                local = f"{last[:4]}{first[:3]}{int(ai * 1e7) % 10_000}"
            domain = DISPOSABLE_DOMAINS[int(ci * len(DISPOSABLE_DOMAINS))] if throwaway[i] else domains[i]
            out.append(self.unique_email(local, domain))
        return out

    def unique_email(self, local: str, domain: str) -> str:
        """`local@domain`, or `local2@domain`, `local3@domain` ... when it is taken (as mail services do)."""
        base = f"{local}@{domain}"
        k = self.email_uses.get(base, 0)
        email = base if k == 0 else f"{local}{k + 1}@{domain}"
        while email in self.emails_seen:
            k += 1
            email = f"{local}{k + 1}@{domain}"
        self.email_uses[base] = k + 1
        self.emails_seen.add(email)
        return email

    def wrap(self, ts: int) -> int:
        """Fold a time that fell off either end of the window back in, keeping its time of day."""
        return self.t0 + (ts - self.t0) % (self.t1 - self.t0)
