"""``VIGIL_REDIS_URL``: every accepted form parses to the deployment it names; bad ones fail
with one line that names the problem and never repeats the password."""

from __future__ import annotations

import pytest

from services.settings import load_settings
from shared.redis_url import RedisTarget, RedisUrlError, parse_redis_url
from shared.settings import ConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6380/2", RedisTarget("standalone", "", nodes=(("127.0.0.1", 6380),),
                                                 db=2)),
        ("rediss://:pw@redis.example:6390", RedisTarget("standalone", "", tls=True,
                                                        nodes=(("redis.example", 6390),))),
        ("unix:///run/redis.sock?db=3", RedisTarget("standalone", "", db=3)),
        ("redis+sentinel://s1:26379,s2,[::1]:26380/mymaster",
         RedisTarget("sentinel", "", nodes=(("s1", 26379), ("s2", 26379), ("::1", 26380)),
                     master="mymaster")),
        ("rediss+sentinel://app:p%40ss@s1:5000/mymaster/4?sentinel_password=spw"
         "&ssl_ca_certs=/ca.pem&ssl_check_hostname=false",
         RedisTarget("sentinel", "", tls=True, nodes=(("s1", 5000),), master="mymaster", db=4,
                     username="app", password="p@ss",
                     options={"ssl_ca_certs": "/ca.pem", "ssl_check_hostname": False},
                     sentinel_options={"password": "spw"})),
        ("redis+cluster://:secret@n1:7000,n2:7001",
         RedisTarget("cluster", "", nodes=(("n1", 7000), ("n2", 7001)), password="secret")),
        ("rediss+cluster://n1/", RedisTarget("cluster", "", tls=True, nodes=(("n1", 6379),))),
        ("rediss+cluster://n1?ssl_ca_certs=/etc/ca/ca.pem&ssl_cert_reqs=required",
         RedisTarget("cluster", "", tls=True, nodes=(("n1", 6379),),
                     options={"ssl_ca_certs": "/etc/ca/ca.pem", "ssl_cert_reqs": "required"})),
    ],
)  # fmt: skip
def test_accepted_forms(url: str, expected: RedisTarget) -> None:
    target = parse_redis_url(url)
    fields = ("topology", "tls", "db", "master", "username", "password", "options",
              "sentinel_options")  # fmt: skip
    assert {f: getattr(target, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    if expected.nodes:
        assert target.nodes == expected.nodes


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://redis:6379", "must start with redis://"),
        ("redis+sentinel://s1:26379", "name the master"),
        ("redis+sentinel://s1:26379/m/1/2", "name the master"),
        ("redis+sentinel://s1:26379/m/x", "database 'x' is not a number"),
        ("redis+sentinel://s1:port/m", "port of 's1:port' is not a number"),
        ("redis+sentinel://s1:99999/m", "out of range"),
        ("redis+sentinel://s1,,s2/m", "at least one HOST:PORT"),
        ("redis+cluster://n1:7000/0", "one database"),
        ("redis+cluster://n1:7000?sentinel_password=x", "unknown option 'sentinel_password'"),
        ("redis+cluster://n1:7000?ssl_ca_certs=/ca", "unknown option 'ssl_ca_certs'"),
        ("redis://localhost?db=x", "db"),
    ],
)
def test_refused_forms(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError, match=problem):
        parse_redis_url(url)


def test_describe_leaves_credentials_out() -> None:
    for url in ("redis+sentinel://u:hunter2@s1:26379/m?sentinel_password=hunter3",
                "redis+cluster://:hunter2@n1:7000", "rediss://:hunter2@h:6390/1"):  # fmt: skip
        text = parse_redis_url(url).describe()
        assert "hunter" not in text
        assert "hunter" not in repr(parse_redis_url(url))
    assert parse_redis_url("redis+sentinel://s1,s2:1/m/2").describe() == (
        "master 'm' (db 2) of the Sentinels s1:26379,s2:1"
    )


def test_settings_name_the_variable_and_hide_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_REDIS_URL", "redis+sentinel://:hunter2@s1:26379")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "VIGIL_REDIS_URL" in message
    assert "name the master" in message
    assert "hunter2" not in message


def test_settings_accept_every_form(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("redis+sentinel://s1:26379,s2:26379/mymaster/1", "rediss+cluster://n1:7000"):
        monkeypatch.setenv("VIGIL_REDIS_URL", url)
        assert load_settings(_env_file=None).redis_url == url
