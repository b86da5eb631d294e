"""Built-in reference data: ISO country codes, the EU/EEA, well-known cities, great-circle distance.

Kept small and static on purpose: placement must run without network or extra packages, and a
site far from every listed city can always give its latitude and longitude instead.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from typing import NamedTuple


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: ISO 3166-1 alpha-2, every officially assigned code.
COUNTRY_CODES = _words(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """
)

#: The 27 EU member states and the three other EEA states, where the GDPR applies.
EU_EEA = _words(
    """
    AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO
    """
)


class Coordinates(NamedTuple):
    latitude: float
    longitude: float


class City(NamedTuple):
    name: str
    country: str
    at: Coordinates


def _city(name: str, country: str, latitude: float, longitude: float) -> City:
    return City(name, country, Coordinates(latitude, longitude))


CITIES = (
    # France, including the regional cities where datacenters and public bodies sit.
    _city("Paris", "FR", 48.8566, 2.3522),
    _city("Lyon", "FR", 45.7640, 4.8357),
    _city("Marseille", "FR", 43.2965, 5.3698),
    _city("Toulouse", "FR", 43.6047, 1.4442),
    _city("Bordeaux", "FR", 44.8378, -0.5792),
    _city("Lille", "FR", 50.6292, 3.0573),
    _city("Nantes", "FR", 47.2184, -1.5536),
    _city("Strasbourg", "FR", 48.5734, 7.7521),
    _city("Rennes", "FR", 48.1173, -1.6778),
    _city("Nice", "FR", 43.7102, 7.2620),
    _city("Montpellier", "FR", 43.6108, 3.8767),
    _city("Grenoble", "FR", 45.1885, 5.7245),
    _city("Roubaix", "FR", 50.6942, 3.1746),
    _city("Gravelines", "FR", 50.9865, 2.1281),
    _city("Rouen", "FR", 49.4432, 1.0999),
    _city("Dijon", "FR", 47.3220, 5.0415),
    _city("Clermont-Ferrand", "FR", 45.7772, 3.0870),
    _city("Orléans", "FR", 47.9030, 1.9093),
    _city("Metz", "FR", 49.1193, 6.1757),
    # The rest of Europe.
    _city("Berlin", "DE", 52.5200, 13.4050),
    _city("Frankfurt", "DE", 50.1109, 8.6821),
    _city("Munich", "DE", 48.1351, 11.5820),
    _city("Hamburg", "DE", 53.5511, 9.9937),
    _city("Düsseldorf", "DE", 51.2277, 6.7735),
    _city("Nuremberg", "DE", 49.4521, 11.0767),
    _city("Falkenstein", "DE", 50.4779, 12.3713),
    _city("Amsterdam", "NL", 52.3676, 4.9041),
    _city("Brussels", "BE", 50.8503, 4.3517),
    _city("Luxembourg", "LU", 49.6116, 6.1319),
    _city("Dublin", "IE", 53.3498, -6.2603),
    _city("London", "GB", 51.5072, -0.1276),
    _city("Milan", "IT", 45.4642, 9.1900),
    _city("Rome", "IT", 41.9028, 12.4964),
    _city("Madrid", "ES", 40.4168, -3.7038),
    _city("Barcelona", "ES", 41.3874, 2.1686),
    _city("Lisbon", "PT", 38.7223, -9.1393),
    _city("Warsaw", "PL", 52.2297, 21.0122),
    _city("Stockholm", "SE", 59.3293, 18.0686),
    _city("Zurich", "CH", 47.3769, 8.5417),
    _city("Geneva", "CH", 46.2044, 6.1432),
    _city("Vienna", "AT", 48.2082, 16.3738),
    _city("Copenhagen", "DK", 55.6761, 12.5683),
    _city("Helsinki", "FI", 60.1699, 24.9384),
    _city("Oslo", "NO", 59.9139, 10.7522),
    _city("Prague", "CZ", 50.0755, 14.4378),
    _city("Budapest", "HU", 47.4979, 19.0402),
    _city("Bucharest", "RO", 44.4268, 26.1025),
    _city("Athens", "GR", 37.9838, 23.7275),
    _city("Sofia", "BG", 42.6977, 23.3219),
    _city("Zagreb", "HR", 45.8150, 15.9819),
    _city("Bratislava", "SK", 48.1486, 17.1077),
    _city("Ljubljana", "SI", 46.0569, 14.5058),
    _city("Tallinn", "EE", 59.4370, 24.7536),
    _city("Riga", "LV", 56.9496, 24.1052),
    _city("Vilnius", "LT", 54.6872, 25.2797),
    _city("Reykjavik", "IS", 64.1466, -21.9426),
    _city("Nicosia", "CY", 35.1856, 33.3823),
    _city("Valletta", "MT", 35.8989, 14.5146),
    # Major cloud regions elsewhere.
    _city("Ashburn", "US", 39.0438, -77.4874),
    _city("Boardman", "US", 45.8398, -119.7006),
    _city("Columbus", "US", 39.9612, -82.9988),
    _city("Montreal", "CA", 45.5019, -73.5674),
    _city("São Paulo", "BR", -23.5558, -46.6396),
    _city("Singapore", "SG", 1.3521, 103.8198),
    _city("Tokyo", "JP", 35.6762, 139.6503),
    _city("Sydney", "AU", -33.8688, 151.2093),
    _city("Mumbai", "IN", 19.0760, 72.8777),
    _city("Hong Kong", "HK", 22.3193, 114.1694),
    _city("Beijing", "CN", 39.9042, 116.4074),
    _city("Shanghai", "CN", 31.2304, 121.4737),
)


def _fold(name: str) -> str:
    """Compare names without case, accents or hyphens: "sao-paulo" finds São Paulo."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().replace("-", " ").split())


#: Names people use for a region rather than its city.
_ALIASES = {"oregon": "Boardman", "virginia": "Ashburn", "frankfurt am main": "Frankfurt"}
_BY_NAME = {_fold(city.name): city for city in CITIES} | {
    alias: city for city in CITIES for alias, name in _ALIASES.items() if name == city.name
}


def find_city(name: str) -> City:
    """The built-in city called `name`; ValueError naming a few close names if there is none."""
    city = _BY_NAME.get(_fold(name))
    if city is not None:
        return city
    close = difflib.get_close_matches(_fold(name), list(_BY_NAME), n=3, cutoff=0.6)
    hint = (
        "close names: " + ", ".join(_BY_NAME[c].name for c in close)
        if close
        else "give latitude and longitude instead"
    )
    raise ValueError(f"unknown city {name!r} ({hint})")


def check_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased; ValueError otherwise."""
    upper = code.strip().upper()
    if upper not in COUNTRY_CODES:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return upper


EARTH_RADIUS_KM = 6371.0088


def distance_km(a: Coordinates, b: Coordinates) -> float:
    """Great-circle (haversine) distance: what a network path can only be longer than."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
