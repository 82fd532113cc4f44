from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import phonenumbers
import polars as pl
import pyarrow.parquet as pq
import pytest

from datasets import phones, reference, snapshot
from datasets.build import generate_snapshot
from datasets.vault import decrypt_number, hmac_number
from kit import keys
from tests.conftest import AS_OF, SEED


def _mean(s: pl.Series) -> float:
    return float(s.cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]


def test_manifest_says_synthetic_and_counts_rows(base: snapshot.Snapshot) -> None:
    m = base.manifest
    assert m["synthetic"] is True
    assert m["seed"] == SEED
    assert m["rows"] == pq.ParquetFile(base.attributes).metadata.num_rows
    assert m["rows"] == pq.ParquetFile(base.contacts).metadata.num_rows
    assert set(m["checksums"]) == {snapshot.ATTRIBUTES, snapshot.CONTACTS}
    assert snapshot.sha256(base.attributes) == m["checksums"][snapshot.ATTRIBUTES]


def test_attributes_hold_no_number(base: snapshot.Snapshot) -> None:
    cols = pq.ParquetFile(base.attributes).schema_arrow.names
    assert not {"phone", "phone_enc", "phone_hmac", "msisdn"} & set(cols)


def test_same_seed_same_snapshot_but_fresh_nonces(base: snapshot.Snapshot, tmp_path: Path) -> None:
    twin = generate_snapshot(tmp_path / "twin", base.manifest["rows"], SEED, AS_OF)
    a, b = pl.read_parquet(base.attributes), pl.read_parquet(twin.attributes)
    assert a.equals(b)
    ca, cb = pq.read_table(base.contacts), pq.read_table(twin.contacts)
    for col in ("prospect_id", "phone_hmac", "territory", "time_zone"):
        assert ca.column(col).equals(cb.column(col)), col
    enc_a, enc_b = ca.column("phone_enc").to_pylist(), cb.column("phone_enc").to_pylist()
    assert sum(x == y for x, y in zip(enc_a, enc_b, strict=True)) == 0
    # ... yet both decrypt to the same numbers.
    key = keys.vault_key()
    ids = ca.column("prospect_id").to_pylist()
    for i in range(0, len(ids), 9973):
        assert decrypt_number(key, enc_a[i], ids[i]) == decrypt_number(key, enc_b[i], ids[i])


def test_other_seed_other_base(base: snapshot.Snapshot, tmp_path: Path) -> None:
    other = generate_snapshot(tmp_path / "other", 5_000, SEED + 1, AS_OF)
    a = pl.read_parquet(base.attributes).head(5_000)
    assert not a.equals(pl.read_parquet(other.attributes))


def test_numbers_valid_for_territory_unique_and_keyed(
    base: snapshot.Snapshot, attributes: pl.DataFrame
) -> None:
    contacts = pq.read_table(base.contacts)
    ids = contacts.column("prospect_id").to_pylist()
    enc = contacts.column("phone_enc").to_pylist()
    terr = contacts.column("territory").to_pylist()
    macs = contacts.column("phone_hmac").to_pylist()
    assert len(set(macs)) == len(macs), "numbers are not unique"
    dep_terr = dict(
        zip(reference.departments()["code"], reference.departments()["territory"], strict=True)
    )
    by_id = dict(
        zip(
            attributes["prospect_id"].to_list(),
            attributes["department"].cast(pl.String).to_list(),
            strict=True,
        )
    )
    key, hkey = keys.vault_key(), keys.hmac_key()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(ids), size=3_000, replace=False):
        number = decrypt_number(key, enc[i], ids[i])
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number[:4]
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        assert phonenumbers.region_code_for_number(parsed) == phones.TERRITORIES[terr[i]].region
        assert dep_terr[by_id[ids[i]]] == terr[i]
        assert hmac_number(hkey, number) == macs[i]


def test_ciphertext_bound_to_its_row(base: snapshot.Snapshot) -> None:
    from cryptography.exceptions import InvalidTag

    contacts = pq.read_table(base.contacts).slice(0, 2)
    ids, enc = contacts.column("prospect_id").to_pylist(), contacts.column("phone_enc").to_pylist()
    with pytest.raises(InvalidTag):
        decrypt_number(keys.vault_key(), enc[0], ids[1])


def test_no_plaintext_number_anywhere_in_the_files(
    base: snapshot.Snapshot, secrets_of_base: dict[str, set[str]]
) -> None:
    sample = sorted(secrets_of_base["numbers"])[:: max(1, len(secrets_of_base["numbers"]) // 500)]
    for path in base.path.iterdir():
        blob = path.read_bytes()
        assert not any(n.encode() in blob for n in sample if n.startswith("+")), path.name


def test_population_follows_reference(attributes: pl.DataFrame) -> None:
    n = attributes.height
    deps = reference.departments()
    expected = dict(zip(deps["code"], deps["population"] / deps["population"].sum(), strict=True))
    got = attributes["department"].cast(pl.String).value_counts()
    shares = dict(zip(got["department"], got["count"] / n, strict=True))
    for dep in ("75", "13", "59", "974", "971", "48"):
        assert shares[dep] == pytest.approx(expected[dep], rel=0.15, abs=0.0005), dep
    assert {"971", "972", "973", "974", "976"} <= set(shares)
    women = _mean(attributes["sex"] == "F")
    assert 0.51 <= women <= 0.54  # adults: women are about 52.5%


def test_communes_postcodes_and_coordinates_consistent(attributes: pl.DataFrame) -> None:
    com = reference.communes().select("insee", "department", "postcodes", "lat", "lon")
    joined = attributes.select(
        pl.col("commune").cast(pl.String),
        pl.col("department").cast(pl.String),
        pl.col("postcode").cast(pl.String),
        "lat",
        "lon",
    ).join(com, left_on="commune", right_on="insee", how="left")
    assert (joined["department"] == joined["department_right"]).all()
    assert joined.select(pl.col("postcodes").str.contains(pl.col("postcode"))).to_series().all()
    assert (joined["lat"] - joined["lat_right"]).abs().max() < 1e-3  # type: ignore[operator]


def test_rows_ordered_by_department_for_pruning(attributes: pl.DataFrame) -> None:
    dep = attributes["department"].cast(pl.String)
    assert dep.is_sorted()


def test_age_pyramid_adults_only(attributes: pl.DataFrame) -> None:
    age_days = (pl.lit(AS_OF) - attributes["birth_date"]).dt.total_days()
    ages = attributes.select((age_days / 365.2425).floor().alias("a"))["a"]
    assert ages.min() >= 18  # type: ignore[operator]
    over_65 = _mean(ages >= 65)
    assert 0.22 <= over_65 <= 0.32  # about 27% of French adults are 65 or over


def test_consent_is_data(attributes: pl.DataFrame) -> None:
    assert attributes["proof_ref"].str.starts_with("PRF-").all()
    assert (attributes["consent_date"] <= attributes["last_interaction"]).all()
    share_in = _mean(attributes["opt_in"])
    assert 0.95 < share_in < 0.99


def test_writes_leave_no_temporary_files(base: snapshot.Snapshot) -> None:
    leftovers = [p.name for p in base.root.rglob(".*")]
    assert leftovers == []


def test_info_manifest_is_json(base: snapshot.Snapshot) -> None:
    text = (base.path / snapshot.MANIFEST).read_text()
    assert json.loads(text)["version"] == base.version


def test_a_damaged_file_is_refused(tmp_path: Path) -> None:
    from kit.errors import ConfigurationError

    snap = generate_snapshot(tmp_path / "base", 2_000, 9, AS_OF)
    snapshot.verify(snap)
    with snap.attributes.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ConfigurationError, match="does not match its manifest checksum"):
        snapshot.verify(snap)


def test_normalisation_reads_national_numbers_in_their_territory(
    secrets_of_base: dict[str, set[str]],
) -> None:
    from datasets.vault import normalise_e164

    reunion = next(n for n in secrets_of_base["numbers"] if n.startswith("+262692"))
    national = "0" + reunion[4:]
    assert normalise_e164(national, "RE") == reunion
    assert normalise_e164(reunion, "FR") == reunion  # an E.164 number carries its own code
    with pytest.raises(ValueError, match="not a valid phone number"):
        normalise_e164("0100", "FR")
