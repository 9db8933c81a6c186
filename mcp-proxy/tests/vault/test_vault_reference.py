"""The reference grammar: whole values, `${...}` inside strings, versions, stages, keys, bare OCIDs, canonical keys."""

from __future__ import annotations

import pytest
from mcpgw_proxy.environment import looks_like_reference
from mcpgw_proxy.vault.errors import ReferenceSyntaxError
from mcpgw_proxy.vault.reference import Reference, Template, parse_reference, parse_value

OCID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.amaaaaaa6noke4qa2b3xyz"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env://MY_KEY", Reference("env", "MY_KEY")),
        ("file:///run/secrets/db", Reference("file", "/run/secrets/db")),
        ("file://localhost/run/secrets/db", Reference("file", "/run/secrets/db")),
        ("file:///run/secrets/a%20b", Reference("file", "/run/secrets/a b")),
        ("vault://secret/mcp/github#token", Reference("vault", "secret/mcp/github", "token")),
        ("vault://secret/mcp/github#token?version=3", Reference("vault", "secret/mcp/github", "token", "3")),
        ("vault://secret/mcp/github?version=3#token", Reference("vault", "secret/mcp/github", "token", "3")),
        ("vault://secret/mcp/github", Reference("vault", "secret/mcp/github")),
        ("vault://kv/team%2Fa/x#k%23ey", Reference("vault", "kv/team/a/x", "k#ey")),
        ("oci-vault://prod/db-password", Reference("oci-vault", "prod/db-password")),
        ("oci-vault://prod/db?stage=previous", Reference("oci-vault", "prod/db", None, "stage:PREVIOUS")),
        ("oci-vault://prod/db?version=7#user", Reference("oci-vault", "prod/db", "user", "7")),
        (f"oci-vault://{OCID}", Reference("oci-vault", OCID)),
        (OCID, Reference("oci-vault", OCID)),
        ("aws-sm://prod/db#password", Reference("aws-sm", "prod/db", "password")),
        (
            "aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
            Reference("aws-sm", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"),
        ),
        ("aws-sm://prod/db?stage=AWSPREVIOUS", Reference("aws-sm", "prod/db", None, "stage:AWSPREVIOUS")),
        ("aws-sm://prod/db?version=0a1b-2c3d#k", Reference("aws-sm", "prod/db", "k", "0a1b-2c3d")),
        ("keyring://mcp-gateway/github", Reference("keyring", "mcp-gateway/github")),
        ("keyring://my/service/user", Reference("keyring", "my/service/user")),
        ("VAULT://secret/x/y#k", Reference("vault", "secret/x/y", "k")),
    ],
)
def test_whole_value_references_parse(text: str, expected: Reference) -> None:
    parsed = parse_value(text)
    assert parsed.parts == (expected,)
    assert parsed.references[0].text == text
    assert looks_like_reference(text)


def test_a_version_number_is_pinned_and_a_stage_is_not() -> None:
    assert parse_reference("vault://secret/a/b?version=2").pinned
    assert not parse_reference("vault://secret/a/b").pinned
    assert not parse_reference("aws-sm://x?stage=AWSCURRENT").pinned
    assert parse_reference("aws-sm://x?version=abc").pinned


def test_references_inside_a_string() -> None:
    template = parse_value("Bearer ${vault://secret/mcp/x#token} and ${env://OTHER}!")
    token = Reference("vault", "secret/mcp/x", "token")
    other = Reference("env", "OTHER")
    assert template.parts == ("Bearer ", token, " and ", other, "!")
    assert template.render({token: "t0k3n", other: "o"}) == "Bearer t0k3n and o!"


def test_a_bare_ocid_inside_a_string() -> None:
    template = parse_value(f"key=${{{OCID}}}")
    assert template.parts == ("key=", Reference("oci-vault", OCID))


def test_plain_values_stay_plain() -> None:
    for value in ("", "plain", "http://example.com/x", "${HOME}/bin", "$PATH", "cost: $5", "vault:/not-a-uri"):
        assert parse_value(value) == Template((value,)), value
        assert not looks_like_reference(value) or value.startswith("${")


def test_dollar_dollar_escapes_a_literal_reference() -> None:
    template = parse_value("literal $${vault://secret/a/b#c} kept")
    assert template == Template(("literal ${vault://secret/a/b#c} kept",))
    assert template.references == ()


def test_two_spellings_of_one_secret_share_a_canonical_key() -> None:
    a = parse_reference("vault://secret/mcp/x#token?version=2")
    b = parse_reference("vault://secret/mcp/x/?version=02#token")
    assert a == b
    assert a.key("token@http://bao") == b.key("token@http://bao")
    assert a.key("p").document == parse_reference("vault://secret/mcp/x#other?version=2").key("p").document
    assert a.key("p") != a.key("q")  # another principal may see another value
    assert a.key("p").canonical() == '["vault", "p", "secret/mcp/x", "token", "2"]'


@pytest.mark.parametrize(
    "text",
    [
        "env://",
        "env://NOT-A-NAME",
        "file://relative/path",
        "file://host.example/x",
        "vault://secret",
        "vault://secret/a/../b#k",
        "vault://secret/a#k?version=0",
        "vault://secret/a#k?version=x",
        "vault://secret/a#k?stage=CURRENT",
        "vault://secret/a#",
        "vault://secret/a#k#l",
        "vault://secret/a?version=1?version=2",
        "oci-vault://only-one-part",
        "oci-vault://a/b/c",
        "oci-vault://a/b?stage=SOMETIME",
        "aws-sm://",
        "aws-sm://bad name",
        "keyring://no-user",
        "keyring://service/",
        "env://X?version=1",
    ],
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ReferenceSyntaxError):
        parse_value(text)
    with pytest.raises(ReferenceSyntaxError):
        parse_value(f"prefix ${{{text}}}")


def test_the_error_names_the_reference_not_a_value() -> None:
    with pytest.raises(ReferenceSyntaxError, match="vault://secret"):
        parse_value("vault://secret")
