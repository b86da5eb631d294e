"""egide.toml loading: defaults, derived erasure code, validation messages, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from egide.config import ConfigError, Settings, default_code, load_settings
from egide.masterkey import key_files

MiB = 1024 * 1024


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "egide.toml"
    path.write_text(text)
    return path


def _sites(count: int) -> str:
    return "".join(f'[[sites]]\nname = "s{i}"\npath = "s{i}"\n' for i in range(count))


def test_no_file_gives_the_defaults() -> None:
    settings = load_settings(None)
    assert settings.listen == "127.0.0.1:9000"
    assert (settings.host, settings.port, settings.scheme) == ("127.0.0.1", 9000, "http")
    assert settings.block_size == MiB
    code = settings.resolved_code()
    assert (code.k, code.m) == (4, 2)
    sites = settings.resolved_sites()
    assert len(sites) == 6
    assert len({s.name for s in sites}) == 6
    assert all(s.kind == "local" for s in sites)
    assert all(s.path.parent == settings.data_dir / "sites" for s in sites)


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, ""))
    assert settings.listen == "127.0.0.1:9000"
    assert settings.block_size == MiB
    assert len(settings.resolved_sites()) == 6


def test_three_sites_give_code_2_plus_1(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, _sites(3)))
    code = settings.resolved_code()
    assert (code.k, code.m) == (2, 1)
    assert [s.name for s in settings.resolved_sites()] == ["s0", "s1", "s2"]


def test_explicit_code_is_kept(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, "code = { k = 2, m = 2 }\n" + _sites(5)))
    code = settings.resolved_code()
    assert (code.k, code.m) == (2, 2)


@pytest.mark.parametrize("sites", range(1, 9))
def test_default_code_fits_the_sites_and_survives_losing_one(sites: int) -> None:
    code = default_code(sites)
    assert code.k >= 1
    assert code.k + code.m <= sites
    if sites >= 2:
        assert code.m >= 1


def test_default_code_for_six_sites_is_4_plus_2() -> None:
    code = default_code(6)
    assert (code.k, code.m) == (4, 2)


def test_every_relative_path_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    """One rule for every path written in the file: data_dir, site paths, TLS files, the
    passphrase file, the access log; the master key is in data_dir."""
    text = (
        'data_dir = "d"\ntls_cert = "tls/c.pem"\ntls_key = "tls/k.pem"\n'
        'passphrase_file = "secret/pass"\n' + _sites(3) + '[http]\naccess_log = "log/a.jsonl"\n'
    )
    settings = load_settings(_config(tmp_path, text))
    assert settings.data_dir == tmp_path / "d"
    assert [s.path for s in settings.resolved_sites()] == [tmp_path / f"s{i}" for i in range(3)]
    assert settings.tls_cert == tmp_path / "tls" / "c.pem"
    assert settings.tls_key == tmp_path / "tls" / "k.pem"
    assert settings.passphrase_file == tmp_path / "secret" / "pass"
    assert settings.http.access_log == str(tmp_path / "log" / "a.jsonl")
    assert key_files(settings).current == tmp_path / "d" / "master.key"


def test_a_relative_site_path_does_not_follow_a_data_dir_override(tmp_path: Path) -> None:
    path = _config(tmp_path, _sites(1))
    settings = load_settings(path, data_dir=tmp_path / "elsewhere")
    assert [s.path for s in settings.resolved_sites()] == [tmp_path / "s0"]


def test_an_absolute_site_path_is_kept(tmp_path: Path) -> None:
    text = f'data_dir = "d"\n[[sites]]\nname = "a"\npath = "{tmp_path / "abs"}"\n'
    assert load_settings(_config(tmp_path, text)).resolved_sites()[0].path == tmp_path / "abs"


def test_without_a_file_relative_paths_are_taken_from_the_working_directory() -> None:
    settings = Settings.model_validate({"data_dir": "d", "sites": [{"name": "a", "path": "s"}]})
    assert settings.data_dir == Path("d")
    assert [s.path for s in settings.resolved_sites()] == [Path("s")]


def _old_site(tmp_path: Path, data_dir: str = "d") -> Path:
    """A site as an earlier Égide placed `path = "sites/a"`: under data_dir, holding data."""
    old = tmp_path / data_dir / "sites" / "a"
    (old / "shards" / "00").mkdir(parents=True)
    (old / "shards" / "00" / "piece").write_bytes(b"x")
    return old


SITE_A = '[[sites]]\nname = "a"\npath = "sites/a"\n'


def test_a_site_whose_data_is_left_at_its_old_location_is_refused(tmp_path: Path) -> None:
    """Earlier versions took a relative site path from data_dir: a start with the site's data
    elsewhere would serve it empty."""
    old = _old_site(tmp_path)
    path = _config(tmp_path, 'data_dir = "d"\n' + SITE_A)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert f'site a: path = "sites/a" now means {tmp_path / "sites" / "a"}' in message
    assert str(old) in message
    assert 'set path = "d/sites/a"' in message
    assert "or move the directory" in message


def test_the_fix_the_refusal_names_loads(tmp_path: Path) -> None:
    old = _old_site(tmp_path)
    text = 'data_dir = "d"\n[[sites]]\nname = "a"\npath = "d/sites/a"\n'
    assert load_settings(_config(tmp_path, text)).resolved_sites()[0].path == old


def test_an_empty_new_location_does_not_hide_the_old_data(tmp_path: Path) -> None:
    _old_site(tmp_path)
    (tmp_path / "sites" / "a").mkdir(parents=True)
    with pytest.raises(ConfigError, match="now means"):
        load_settings(_config(tmp_path, 'data_dir = "d"\n' + SITE_A))


def test_an_old_location_under_a_data_dir_override_is_found(tmp_path: Path) -> None:
    _old_site(tmp_path, "other")
    with pytest.raises(ConfigError, match="now means"):
        load_settings(_config(tmp_path, SITE_A), data_dir=tmp_path / "other")


def test_an_absolute_data_dir_outside_the_folder_is_suggested_absolute(tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    old = _old_site(tmp_path, "var")
    with pytest.raises(ConfigError, match=f'set path = "{old}"'):
        load_settings(_config(conf, f'data_dir = "{tmp_path / "var"}"\n' + SITE_A))


@pytest.mark.parametrize("new_has_data", [True, False])
def test_a_site_at_its_new_location_or_with_nothing_left_behind_loads(
    tmp_path: Path, new_has_data: bool
) -> None:
    if new_has_data:
        _old_site(tmp_path)
        (tmp_path / "sites" / "a" / "shards").mkdir(parents=True)
    else:
        (tmp_path / "d" / "sites" / "a").mkdir(parents=True)  # an empty old directory
    settings = load_settings(_config(tmp_path, 'data_dir = "d"\n' + SITE_A))
    assert settings.resolved_sites()[0].path == tmp_path / "sites" / "a"


def test_relative_data_dir_is_resolved_against_the_config_directory(tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc" / "egide"
    conf_dir.mkdir(parents=True)
    settings = load_settings(_config(conf_dir, 'data_dir = "../../var/data"\n'))
    assert settings.data_dir.resolve() == (tmp_path / "var" / "data").resolve()


def test_absolute_data_dir_is_kept(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, f'data_dir = "{tmp_path / "abs"}"\n'))
    assert settings.data_dir == tmp_path / "abs"


def test_relative_tls_paths_are_resolved_against_the_config_directory(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, 'tls_cert = "c.pem"\ntls_key = "k.pem"\n'))
    assert settings.tls_cert == tmp_path / "c.pem"
    assert settings.tls_key == tmp_path / "k.pem"
    assert settings.scheme == "https"


def test_overrides_win_over_the_file_and_none_is_ignored(tmp_path: Path) -> None:
    path = _config(tmp_path, 'listen = "127.0.0.1:9100"\n')
    assert load_settings(path, listen="0.0.0.0:9200").port == 9200
    assert load_settings(path, listen=None).port == 9100


# -- refused files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("block_size = 12\n", "block_size"),
        (f"block_size = {32 * MiB}\n", "block_size"),
        ('block_size = "big"\n', "block_size"),
        ("colour = 1\n", "colour"),
        ('listen = "localhost"\n', "listen"),
        ("trash_grace_seconds = -1\n", "trash_grace_seconds"),
        ("code = { k = 0, m = 1 }\n", "code.k"),
        ("code = { k = 2, m = 1, x = 3 }\n", "code.x"),
        ('[[sites]]\nname = "bad name!"\npath = "p"\n', "sites.0.name"),
        ('[[sites]]\nname = "s"\n', "sites.0.path"),
        ('[[sites]]\nname = "s"\npath = "p"\nkind = "ftp"\n', "sites.0.kind"),
        ('[[credentials]]\naccess_key = "AK1"\nsecret_key = "short"\n', "credentials.0.secret_key"),
    ],
)
def test_invalid_field_is_refused_with_its_name(tmp_path: Path, text: str, field: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"{field}:" in str(info.value)
    assert str(path) in str(info.value)


def test_code_larger_than_the_sites_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"code: 3\+1 needs 4 sites, only 3"):
        load_settings(_config(tmp_path, "code = { k = 3, m = 1 }\n" + _sites(3)))


def test_code_larger_than_the_default_six_sites_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="code"):
        load_settings(_config(tmp_path, "code = { k = 5, m = 3 }\n"))


def test_duplicate_site_names_are_refused(tmp_path: Path) -> None:
    text = '[[sites]]\nname = "s"\npath = "a"\n[[sites]]\nname = "s"\npath = "b"\n'
    with pytest.raises(ConfigError, match="sites: two sites have the same name"):
        load_settings(_config(tmp_path, text))


@pytest.mark.parametrize("text", ['tls_cert = "c.pem"\n', 'tls_key = "k.pem"\n'])
def test_tls_cert_and_key_must_come_together(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key"):
        load_settings(_config(tmp_path, text))


def test_bad_toml_syntax_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, "block_size = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"cannot read {path}"):
        load_settings(path)


def test_directory_instead_of_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path)


def test_non_utf8_file_is_refused_as_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "egide.toml"
    path.write_bytes(b'listen = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_listen_port_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listen"):
        load_settings(_config(tmp_path, 'listen = "127.0.0.1:99999"\n'))


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.block_size = 2 * MiB  # type: ignore[misc]


def test_oidc_providers_and_sts_settings(tmp_path: Path) -> None:
    config = tmp_path / "egide.toml"
    config.write_text(
        "[sts]\nmin_duration_seconds = 1\n"
        '[[oidc]]\nissuer = "https://auth.example.org/realms/town/"\naudiences = ["egide"]\n'
        'roles = [{claim = "groups", value = "finance", role = "finance-reader"}]\n'
    )
    settings = load_settings(config)
    assert settings.sts.min_duration_seconds == 1
    (provider,) = settings.oidc
    assert provider.issuer == "https://auth.example.org/realms/town"  # as tokens name it
    assert provider.roles[0].role == "finance-reader" and provider.timeout_seconds == 5.0
    assert Settings().sts.min_duration_seconds == 900 and Settings().oidc == []
    for refused in ('issuer = "http://auth.example.org"\naudiences = ["a"]',  # plain HTTP
                    'issuer = "https://auth.example.org"\naudiences = []'):  # fmt: skip
        config.write_text(f"[[oidc]]\n{refused}\n")
        with pytest.raises(ConfigError, match="oidc"):
            load_settings(config)
    config.write_text("[sts]\nmin_duration_seconds = 3600\n")  # never above AWS's 900
    with pytest.raises(ConfigError, match="min_duration_seconds"):
        load_settings(config)


def test_the_catalog_is_sqlite_unless_a_postgresql_url_is_set(tmp_path: Path) -> None:
    assert load_settings(None).catalog.url is None
    path = _config(
        tmp_path,
        '[catalog]\nurl = "postgresql://egide@db.example:5432/egide"\n'
        'password_file = "secrets/catalog"\npool_size = 20\n',
    )
    catalog = load_settings(path).catalog
    assert catalog.url == "postgresql://egide@db.example:5432/egide"
    assert catalog.password_file == tmp_path / "secrets" / "catalog"  # from the file's folder
    assert catalog.pool_size == 20


@pytest.mark.parametrize(
    ("catalog", "says"),
    [
        ('url = "postgresql://egide:hunter2@db/egide"', "must not hold the password"),
        ('url = "mysql://egide@db/egide"', "url must be postgresql://"),
        ('url = "postgresql://e@db/e"\npassword_env = "P"\npassword_file = "f"', "not both"),
        ('password_env = "P"', "need a url"),
    ],
)
def test_a_catalog_setting_that_cannot_work_is_refused(
    tmp_path: Path, catalog: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        load_settings(_config(tmp_path, f"[catalog]\n{catalog}\n"))
    assert "hunter2" not in str(refused.value)
