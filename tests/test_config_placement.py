"""egide.toml placement: site profiles beside each site, `[[policies]]`, their validation at load
time with the placement library's messages, and the defaults of sites that declare nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from egide.config import ConfigError, Settings, load_settings
from egide.placement import Policy

S3_SITE = """[[sites]]
name = "{name}"
kind = "s3"
endpoint = "{endpoint}"
bucket = "egide-shards"
access_key = "access"
secret_key = "secret-key-0001"
"""


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "egide.toml"
    path.write_text(text)
    return load_settings(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


def _disks(count: int, profile: str = "") -> str:
    return "".join(
        f'[[sites]]\nname = "disk-{i}"\npath = "disk-{i}"\n{profile}' for i in range(1, count + 1)
    )


# -- site profiles ------------------------------------------------------------------------------


def test_sites_without_a_profile_are_known_to_be_unknown(tmp_path: Path) -> None:
    text = _disks(2) + S3_SITE.format(name="far", endpoint="https://s3.example.net:8443")
    settings = _load(tmp_path, text)
    disk, _, remote = settings.site_profiles()
    assert (disk.name, disk.provider, disk.country, disk.laws) == ("disk-1", "local", "ZZ",
                                                                   ("unknown",))  # fmt: skip
    assert disk.location is None and disk.certifications == ()
    assert disk.storage_gb_month == 0.0
    # Buckets behind one endpoint count as one provider.
    assert remote.provider == "s3.example.net:8443"
    assert settings.bucket_policies().for_bucket("anything") is None
    assert settings.fallback_policy() == Policy(k=2, m=1)


def test_default_sites_have_default_profiles() -> None:
    profiles = load_settings(None).site_profiles()
    assert [p.name for p in profiles] == [f"local-{i}" for i in range(1, 7)]
    assert {p.provider for p in profiles} == {"local"}


def test_a_full_profile_is_read_and_derived(tmp_path: Path) -> None:
    profile = (
        'provider = "OVHcloud"\ncity = "Gravelines"\ncertifications = ["HDS", "SecNumCloud"]\n'
        "storage_gb_month = 0.007\negress_gb = 0.01\nper_1000_requests = 0.005\n"
        "capacity_bytes = 1000000000000\n"
    )
    text = S3_SITE.format(name="ovh-gra", endpoint="https://s3.gra.io.cloud.ovh.net") + profile
    text += S3_SITE.format(name="aws-par", endpoint="https://s3.eu-west-3.amazonaws.com")
    text += 'provider = "AWS"\ncountry = "fr"\nlatitude = 48.86\nlongitude = 2.35\n'
    ovh, aws = _load(tmp_path, text).site_profiles()
    assert (ovh.provider, ovh.country, ovh.laws) == ("OVHcloud", "FR", ("eu",))
    assert ovh.holds("secnumcloud") and ovh.location is not None
    assert (ovh.storage_gb_month, ovh.egress_gb, ovh.per_1000_requests) == (0.007, 0.01, 0.005)
    assert ovh.capacity_bytes == 10**12
    # The CLOUD Act follows the company, not the disk.
    assert (aws.country, aws.laws) == ("FR", ("eu", "us-cloud-act"))
    assert aws.location is not None and aws.location.latitude == 48.86


def test_explicit_laws_replace_the_derivation(tmp_path: Path) -> None:
    text = _disks(1, 'provider = "AWS"\ncountry = "FR"\nlaws = ["EU"]\n')
    (site,) = _load(tmp_path, text).site_profiles()
    assert site.laws == ("eu",)


def test_a_provider_without_a_country_keeps_the_laws_the_provider_implies(tmp_path: Path) -> None:
    (site,) = _load(tmp_path, _disks(1, 'provider = "Google"\n')).site_profiles()
    assert (site.country, site.laws) == ("ZZ", ("unknown", "us-cloud-act"))


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ('city = "Pariss"\n', "sites.0: unknown city 'Pariss' (close names: Paris)"),
        ('country = "XX"\n', "sites.0: country: 'XX' is not an ISO 3166-1 alpha-2 country code"),
        ('country = "DE"\ncity = "Lyon"\n', "sites.0: city Lyon is in FR, not DE"),
        ("latitude = 45.0\n", "sites.0: latitude and longitude: give both, or neither"),
        ("storage_gb_month = -1\n", "sites.0: storage_gb_month: Input should be greater than"),
        ("latitude = 95.0\nlongitude = 0.0\n", "sites.0: latitude: Input should be less than"),
        ('provider = ""\n', "sites.0: provider: String should have at least 1 character"),
        ("capacity_bytes = -5\n", "sites.0: capacity_bytes: Input should be greater than"),
        ('laws = [" "]\n', "sites.0: laws: a law tag is empty"),
        ('providr = "OVH"\n', "sites.0.providr: Extra inputs are not permitted"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(
    tmp_path: Path, profile: str, message: str
) -> None:
    assert message in _refused(tmp_path, _disks(1, profile))


def test_a_bad_s3_site_profile_is_refused_too(tmp_path: Path) -> None:
    text = S3_SITE.format(name="far", endpoint="https://s3.example.net") + 'city = "Atlantis"\n'
    assert "sites.0: unknown city 'Atlantis'" in _refused(tmp_path, text)


# -- policies -----------------------------------------------------------------------------------

PROFILED = (
    _disks(2, 'provider = "Ville de Lyon"\ncity = "Lyon"\ncertifications = ["HDS"]\n')
    + '[[sites]]\nname = "ovh"\npath = "ovh"\nprovider = "OVHcloud"\ncity = "Roubaix"\n'
    + 'certifications = ["HDS"]\nstorage_gb_month = 0.007\n'
    + '[[sites]]\nname = "aws"\npath = "aws"\nprovider = "AWS"\ncity = "Paris"\n'
    + '[[sites]]\nname = "hetzner"\npath = "hetzner"\nprovider = "Hetzner"\ncity = "Frankfurt"\n'
)


def test_policies_default_and_per_bucket(tmp_path: Path) -> None:
    text = PROFILED + (
        "[[policies]]\nk = 3\nm = 2\nmax_per_provider = 2\n"
        '[[policies]]\nbuckets = ["health-records", "hr.archive"]\nk = 2\nm = 1\n'
        'countries = ["FR"]\ncertifications = ["HDS"]\nobjective = "cheapest"\n'
        '[[policies]]\nbuckets = ["eu-only"]\nk = 2\nm = 2\nexclude_laws = ["us-cloud-act"]\n'
        "max_per_law = { eu = 4 }\nmin_in_country = { fr = 2 }\n"
    )
    policies = _load(tmp_path, text).bucket_policies()
    default = policies.for_bucket("photos")
    assert default is not None and (default.k, default.m, default.max_per_provider) == (3, 2, 2)
    health = policies.for_bucket("hr.archive")
    assert health is not None and health == policies.for_bucket("health-records")
    assert (health.k, health.m, health.objective) == (2, 1, "cheapest")
    assert health.countries == ("FR",)
    eu = policies.for_bucket("eu-only")
    assert eu is not None and eu.min_in_country == {"FR": 2}
    assert type(eu) is Policy  # the plain library value, without `buckets`


def test_only_per_bucket_policies_leave_other_buckets_on_the_global_code(tmp_path: Path) -> None:
    text = PROFILED + '[[policies]]\nbuckets = ["archive"]\nk = 2\nm = 1\n'
    settings = _load(tmp_path, text)
    assert settings.bucket_policies().for_bucket("photos") is None
    assert settings.fallback_policy() == Policy(k=3, m=2)  # the default code of five sites


def test_a_policy_works_over_the_default_sites(tmp_path: Path) -> None:
    settings = _load(tmp_path, "[[policies]]\nk = 3\nm = 1\n")
    assert settings.bucket_policies().default == Policy(k=3, m=1)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("k = 4\nm = 1\nmax_per_provider = 0\n", "policies.0: max_per_provider: 0 is below 1"),
        ("k = 2\nm = 1\nmin_in_country = { FR = 4 }\n",
         "policies.0: min_in_country: 4 shards in FR exceeds k+m = 3"),
        ('k = 2\nm = 1\nproviders = ["AWS"]\nexclude_providers = ["aws"]\n',
         "policies.0: providers and exclude_providers both name aws"),
        ("k = 2\nm = 1\nmax_distance_km = 300\n",
         "policies.0: max_distance_km needs an origin (a city or latitude/longitude)"),
        ("k = 0\nm = 1\n", "policies.0: k: 0 is below 1"),
        ('k = 2\nm = 1\norigin = "Atlantis"\n', "policies.0.origin"),
        ('k = 2\nm = 1\ncountries = ["France"]\n', "policies.0.countries"),
        ('k = 2\nm = 1\nobjective = "greenest"\n', "policies.0.objective"),
        ("k = 2\nm = 1\nmax_per_providers = 1\n",
         "policies.0.max_per_providers: Extra inputs are not permitted"),
        ('k = 2\nm = 1\nbuckets = ["Not_A_Bucket"]\n',
         "policies.0.buckets: Value error, 'Not_A_Bucket' is not a valid bucket name"),
        ("m = 1\n", "policies.0.k: Field required"),
    ],
)  # fmt: skip
def test_a_bad_policy_is_refused_naming_the_constraint(
    tmp_path: Path, policy: str, message: str
) -> None:
    assert message in _refused(tmp_path, PROFILED + "[[policies]]\n" + policy)


def test_two_default_policies_are_refused(tmp_path: Path) -> None:
    text = PROFILED + "[[policies]]\nk = 2\nm = 1\n[[policies]]\nk = 3\nm = 1\n"
    assert "policies: 2 entries without `buckets` (policies.0, policies.1)" in _refused(
        tmp_path, text
    )


def test_a_bucket_in_two_policies_is_refused(tmp_path: Path) -> None:
    text = PROFILED + (
        '[[policies]]\nbuckets = ["archive"]\nk = 2\nm = 1\n'
        '[[policies]]\nbuckets = ["photos", "archive"]\nk = 3\nm = 1\n'
    )
    assert "policies.1: bucket archive is named also in policies.0" in _refused(tmp_path, text)


def test_a_policy_no_placement_can_meet_is_refused_with_the_solvers_reason(tmp_path: Path) -> None:
    text = PROFILED + '[[policies]]\nbuckets = ["health"]\nk = 3\nm = 1\ncertifications = ["HDS"]\n'
    message = _refused(tmp_path, text)
    assert "policies.0 (buckets health): no placement even with every site up" in message
    assert "certifications HDS: only 3 sites hold HDS: disk-1, disk-2, ovh; 4 are needed" in message


def test_limits_over_sites_without_a_profile_are_refused_at_start(tmp_path: Path) -> None:
    """Six undescribed disks are one provider as far as anyone knows: a policy that needs
    several providers cannot rely on them."""
    message = _refused(tmp_path, _disks(6) + "[[policies]]\nk = 4\nm = 2\nmax_per_provider = 2\n")
    assert "policies.0 (the default policy): no placement even with every site up" in message
    assert "max_per_provider = 2" in message and "local (6)" in message


def test_countries_filter_refuses_sites_of_unknown_country(tmp_path: Path) -> None:
    message = _refused(tmp_path, _disks(3) + '[[policies]]\nk = 2\nm = 1\ncountries = ["FR"]\n')
    assert "countries: only 0 sites are in FR" in message


def test_settings_with_placement_survive_the_trip_to_worker_processes(tmp_path: Path) -> None:
    text = PROFILED + (
        "[[policies]]\nk = 3\nm = 2\nmax_per_provider = 2\norigin = { latitude = 45.7, "
        'longitude = 4.8 }\nobjective = "nearest"\nmax_per_law = { us-cloud-act = 1, "*" = 5 }\n'
    )
    settings = _load(tmp_path, text)
    again = Settings.model_validate_json(settings.model_dump_json())
    assert again == settings
    assert again.site_profiles() == settings.site_profiles()
    assert again.bucket_policies() == settings.bucket_policies()
