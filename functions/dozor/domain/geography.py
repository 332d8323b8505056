"""Russian regions Dozor ships to: time zone, population and how remote delivery is.

Pure data. Scoring uses the UTC offset (the buyer's local hour) and the remoteness tier; the
simulator uses the population weights, cities and postal prefixes to place buyers.

Remoteness tiers (what a parcel from China goes through to get there):
  0  Moscow and St Petersburg (the cities themselves),
  1  big cities and central / European Russia, including the two capital oblasts,
  2  the Urals and Siberia away from the big hubs, the north-west and the Kaliningrad exclave,
  3  the Far East and the far North.

Codes are ISO 3166-2:RU. A few non-ISO spellings that checkout systems send (RU-YAK for Sakha,
whose ISO code is RU-SA) are accepted through `REGION_ALIASES`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    code: str  # ISO 3166-2, e.g. "RU-MOW"
    name: str
    city: str  # the administrative centre
    utc_offset: int  # hours; Russia keeps no daylight saving time
    population: float  # millions of people, used as a weight
    tier: int  # remoteness, 0 (capital) .. 3 (Far East / far North)
    postal_prefixes: tuple[str, ...]  # first three digits of the region's postcodes
    towns: tuple[str, ...] = ()  # other places orders go to, besides `city`


def _region(
    code: str,
    name: str,
    city: str,
    utc_offset: int,
    population: float,
    tier: int,
    postal: str,
    towns: str = "",
) -> Region:
    """A table row; postcodes and towns are written space- and comma-separated to keep rows short."""
    return Region(
        code,
        name,
        city,
        utc_offset,
        population,
        tier,
        tuple(postal.split()),
        tuple(filter(None, towns.split(", "))),
    )


_REGION_LIST: tuple[Region, ...] = (
    # Tier 0: the capitals.
    _region("RU-MOW", "Moscow", "Москва", 3, 13.1, 0, "101 105 109 115 117 119 121 123 125 127 129"),
    _region(
        "RU-SPE", "Saint Petersburg", "Санкт-Петербург", 3, 5.6, 0, "190 191 192 194 195 196 197 198 199"
    ),
    # Tier 1: the capital oblasts, big cities and central / southern European Russia.
    _region(
        "RU-MOS",
        "Moscow Oblast",
        "Красногорск",
        3,
        8.5,
        1,
        "140 141 142 143 144",
        "Балашиха, Химки, Подольск, Мытищи, Королёв, Люберцы, Одинцово",
    ),
    _region(
        "RU-LEN", "Leningrad Oblast", "Гатчина", 3, 2.0, 1, "187 188", "Всеволожск, Мурино, Кудрово, Выборг"
    ),
    _region(
        "RU-KDA", "Krasnodar Krai", "Краснодар", 3, 5.8, 1, "350 352 353 354", "Сочи, Новороссийск, Армавир"
    ),
    _region("RU-ROS", "Rostov Oblast", "Ростов-на-Дону", 3, 4.2, 1, "344 346 347", "Таганрог, Шахты"),
    _region("RU-TA", "Tatarstan", "Казань", 3, 4.0, 1, "420 423", "Набережные Челны, Альметьевск"),
    _region(
        "RU-NIZ", "Nizhny Novgorod Oblast", "Нижний Новгород", 3, 3.1, 1, "603 606 607", "Дзержинск, Арзамас"
    ),
    _region("RU-VOR", "Voronezh Oblast", "Воронеж", 3, 2.3, 1, "394 396"),
    _region("RU-VGG", "Volgograd Oblast", "Волгоград", 3, 2.5, 1, "400 404", "Волжский"),
    _region("RU-STA", "Stavropol Krai", "Ставрополь", 3, 2.9, 1, "355 357", "Пятигорск, Кисловодск"),
    _region("RU-YAR", "Yaroslavl Oblast", "Ярославль", 3, 1.2, 1, "150 152"),
    _region("RU-TUL", "Tula Oblast", "Тула", 3, 1.5, 1, "300 301"),
    _region("RU-SAM", "Samara Oblast", "Самара", 4, 3.2, 1, "443 445 446", "Тольятти, Сызрань"),
    _region("RU-SAR", "Saratov Oblast", "Саратов", 4, 2.4, 1, "410 413", "Энгельс"),
    _region("RU-UD", "Udmurtia", "Ижевск", 4, 1.5, 1, "426 427"),
    _region("RU-BA", "Bashkortostan", "Уфа", 5, 4.0, 1, "450 452 453", "Стерлитамак"),
    _region(
        "RU-SVE",
        "Sverdlovsk Oblast",
        "Екатеринбург",
        5,
        4.3,
        1,
        "620 622 623",
        "Нижний Тагил, Каменск-Уральский",
    ),
    _region("RU-CHE", "Chelyabinsk Oblast", "Челябинск", 5, 3.4, 1, "454 455 456", "Магнитогорск, Златоуст"),
    _region("RU-PER", "Perm Krai", "Пермь", 5, 2.5, 1, "614 617 618"),
    _region("RU-NVS", "Novosibirsk Oblast", "Новосибирск", 7, 2.8, 1, "630 633", "Бердск"),
    # Tier 2: the Urals and Siberia beyond the hubs, the north-west, the exclave.
    _region("RU-KGD", "Kaliningrad Oblast", "Калининград", 2, 1.0, 2, "236 238"),
    _region("RU-ARK", "Arkhangelsk Oblast", "Архангельск", 3, 1.0, 2, "163 164", "Северодвинск"),
    _region("RU-KO", "Komi Republic", "Сыктывкар", 3, 0.7, 2, "167 169", "Ухта"),
    _region("RU-TYU", "Tyumen Oblast", "Тюмень", 5, 1.6, 2, "625 627", "Тобольск"),
    _region(
        "RU-KHM", "Khanty-Mansi Autonomous Okrug", "Ханты-Мансийск", 5, 1.7, 2, "628", "Сургут, Нижневартовск"
    ),
    _region("RU-OMS", "Omsk Oblast", "Омск", 6, 1.9, 2, "644 646"),
    _region("RU-TOM", "Tomsk Oblast", "Томск", 7, 1.1, 2, "634 636"),
    _region("RU-KEM", "Kemerovo Oblast", "Кемерово", 7, 2.6, 2, "650 652 654", "Новокузнецк"),
    _region("RU-ALT", "Altai Krai", "Барнаул", 7, 2.2, 2, "656 658 659", "Бийск"),
    _region("RU-KYA", "Krasnoyarsk Krai", "Красноярск", 7, 2.9, 2, "660 662 663", "Ачинск, Норильск"),
    _region("RU-IRK", "Irkutsk Oblast", "Иркутск", 8, 2.4, 2, "664 665 666", "Ангарск, Братск"),
    _region("RU-BU", "Buryatia", "Улан-Удэ", 8, 1.0, 2, "670 671"),
    # Tier 3: the Far East and the far North.
    _region("RU-MUR", "Murmansk Oblast", "Мурманск", 3, 0.67, 3, "183 184"),
    _region(
        "RU-YAN", "Yamalo-Nenets Autonomous Okrug", "Салехард", 5, 0.51, 3, "629", "Новый Уренгой, Ноябрьск"
    ),
    _region("RU-ZAB", "Zabaykalsky Krai", "Чита", 9, 1.0, 3, "672 673 674"),
    _region("RU-SA", "Sakha (Yakutia) Republic", "Якутск", 9, 1.0, 3, "677 678", "Нерюнгри, Мирный"),
    _region("RU-AMU", "Amur Oblast", "Благовещенск", 9, 0.77, 3, "675 676"),
    _region("RU-PRI", "Primorsky Krai", "Владивосток", 10, 1.8, 3, "690 692", "Уссурийск, Находка"),
    _region("RU-KHA", "Khabarovsk Krai", "Хабаровск", 10, 1.3, 3, "680 681 682", "Комсомольск-на-Амуре"),
    _region("RU-YEV", "Jewish Autonomous Oblast", "Биробиджан", 10, 0.15, 3, "679"),
    _region("RU-MAG", "Magadan Oblast", "Магадан", 11, 0.14, 3, "685 686"),
    _region("RU-SAK", "Sakhalin Oblast", "Южно-Сахалинск", 11, 0.47, 3, "693 694"),
    _region("RU-KAM", "Kamchatka Krai", "Петропавловск-Камчатский", 12, 0.29, 3, "683 684"),
    _region("RU-CHU", "Chukotka Autonomous Okrug", "Анадырь", 12, 0.05, 3, "689"),
)

REGIONS: dict[str, Region] = {r.code: r for r in _REGION_LIST}

# Non-ISO codes seen in the wild, mapped to the ISO code.
REGION_ALIASES: dict[str, str] = {"RU-YAK": "RU-SA", "RU-MSK": "RU-MOW", "RU-SPB": "RU-SPE"}


def normalise_region(region_code: str | None) -> str | None:
    """The ISO code for a region code as checkout sent it, or None when it is not a known region."""
    if not region_code:
        return None
    code = region_code.strip().upper()
    code = REGION_ALIASES.get(code, code)
    return code if code in REGIONS else None


def remoteness_tier(region_code: str | None) -> int | None:
    """0 (Moscow / St Petersburg) .. 3 (Far East, far North); None for a missing or unknown region."""
    code = normalise_region(region_code)
    return REGIONS[code].tier if code else None
