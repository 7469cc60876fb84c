"""Mataram's geography: the areas an alert can be routed to, and how polygons map onto them."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Polygon, box

from schemas.geography import Area, Geography, load_geography

CAP_DIR = Path(__file__).parent / "data" / "bmkg" / "cap"
AMPENAN_SELATAN = "52.71.01.1004"
AMPENAN_UTARA = "52.71.01.1007"
JATISELA = "52.01.09.2010"


@pytest.fixture(scope="module")
def geo() -> Geography:
    return load_geography()


def codes(areas: list[Area]) -> list[str]:
    return [a.code for a in areas]


def cap_polygons(name: str) -> list[Polygon]:
    """The <polygon> rings of a CAP file as shapely (lon, lat), read without the CAP parser so
    this file tests geography alone."""
    text = (CAP_DIR / name).read_text(encoding="utf-8")
    rings = re.findall(r"<polygon>(.*?)</polygon>", text)
    return [
        Polygon([(float(lon), float(lat)) for lat, lon in (p.split(",") for p in ring.split())])
        for ring in rings
    ]


def test_mataram_has_50_kelurahan_in_6_kecamatan(geo: Geography) -> None:
    assert len(geo.kelurahan) == 50
    per_kecamatan = Counter(a.kecamatan_code for a in geo.kelurahan.values())
    assert per_kecamatan == {
        "52.71.01": 10,
        "52.71.02": 9,
        "52.71.03": 10,
        "52.71.04": 5,
        "52.71.05": 9,
        "52.71.06": 7,
    }
    names = {geo.kecamatan_names[c] for c in per_kecamatan}
    assert names == {"Ampenan", "Mataram", "Cakranegara", "Sekarbela", "Selaparang", "Sandubaya"}
    for code, area in geo.kelurahan.items():
        assert area.code == code
        assert re.fullmatch(r"52\.71\.0[1-6]\.1\d{3}", code)  # kelurahan are all urban (1xxx)
        assert area.in_mataram
        assert area.kecamatan_code == code[:8]
        assert area.kecamatan_name == geo.kecamatan_names[area.kecamatan_code]


def test_codes_and_names_follow_kepmendagri_2025(geo: Geography) -> None:
    assert geo.get(AMPENAN_SELATAN).name == "Ampenan Selatan"
    assert geo.get("52.71.01.1011").name == "Pejarakan Karya"  # "Pajarakan Karya" before 2025
    assert geo.kecamatan_names["52.71.05"] == "Selaparang"  # "Selaprang" before 2025
    assert geo.get("52.71.02.1001").name == "Pagesangan"


def test_every_kelurahan_polygon_is_valid_with_area(geo: Geography) -> None:
    for area in geo.kelurahan.values():
        assert area.geometry.is_valid, area.code
        assert area.geometry.area > 1e-6, area.code  # > ~1 ha: no empty or degenerate shapes
    for area in geo.neighbours.values():
        assert area.geometry.is_valid, area.code


def test_ampenan_selatan_sliver_is_dropped(geo: Geography) -> None:
    # The source has an extra 3-point sliver (~6e-16 deg²) in Ampenan Selatan's MultiPolygon.
    assert len(geo.get(AMPENAN_SELATAN).geometry.geoms) == 1


def test_every_kelurahan_representative_point_resolves_to_itself(geo: Geography) -> None:
    # representative_point, not centroid: Cilinaya's centroid lies ~125 m outside Cilinaya.
    for area in geo.kelurahan.values():
        point = area.geometry.representative_point()
        assert geo.kelurahan_at(point.y, point.x) == area


def test_points_outside_mataram_resolve_to_none(geo: Geography) -> None:
    assert geo.kelurahan_at(-8.58, 116.05) is None  # Lombok Strait, west of Ampenan
    desa = geo.get(JATISELA).geometry.representative_point()
    assert geo.kelurahan_at(desa.y, desa.x) is None  # Lombok Barat, not Mataram
    assert geo.kelurahan_at(float("nan"), 116.1) is None


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("mataram_test_CNB20261127001_alert.xml", [AMPENAN_SELATAN]),
        ("mataram_test_CNB20261127002_alert.xml", ["52.71.02.1011", "52.71.05.1008"]),
    ],
)
def test_test_cap_polygons_cover_exactly_their_kelurahan(
    geo: Geography, file_name: str, expected: list[str]
) -> None:
    polygons = cap_polygons(file_name)
    assert codes(geo.kelurahan_overlapping(polygons)) == expected
    assert geo.neighbours_overlapping(polygons) == []


def test_second_test_cap_spans_two_kecamatan(geo: Geography) -> None:
    found = geo.kelurahan_overlapping(cap_polygons("mataram_test_CNB20261127002_alert.xml"))
    assert [(a.name, a.kecamatan_name) for a in found] == [
        ("Pejanggik", "Mataram"),
        ("Monjok Timur", "Selaparang"),
    ]


def test_polygon_touching_only_an_edge_does_not_count(geo: Geography) -> None:
    kelurahan = geo.get(AMPENAN_SELATAN).geometry
    # Everything around Ampenan Selatan: it shares the kelurahan's whole boundary, no area.
    around = box(*kelurahan.buffer(0.01).bounds).difference(kelurahan)
    found = codes(geo.kelurahan_overlapping([around]))
    assert AMPENAN_SELATAN not in found
    assert "52.71.01.1005" in found  # Ampenan Tengah, next door, is covered
    # A square sharing one edge with a square that overlaps the kelurahan only counts that one.
    x0, y0 = kelurahan.representative_point().coords[0]
    inner = box(x0 - 1e-4, y0 - 1e-4, x0 + 1e-4, y0 + 1e-4)
    touching = box(x0 + 1e-4, y0 - 1e-4, x0 + 3e-4, y0 + 1e-4)
    assert geo.kelurahan_overlapping([inner]) == [geo.get(AMPENAN_SELATAN)]
    assert inner.touches(touching)
    assert codes(geo.kelurahan_overlapping([inner, touching])) == [AMPENAN_SELATAN]


def test_overlapping_handles_empty_and_self_intersecting_input(geo: Geography) -> None:
    assert geo.kelurahan_overlapping([]) == []
    assert geo.kelurahan_overlapping([Polygon()]) == []
    x0, y0 = geo.get(AMPENAN_SELATAN).geometry.representative_point().coords[0]
    d = 2e-4  # a bow-tie, invalid as given; still covers the kelurahan
    bowtie = Polygon([(x0 - d, y0 - d), (x0 + d, y0 + d), (x0 + d, y0 - d), (x0 - d, y0 + d)])
    assert not bowtie.is_valid
    assert codes(geo.kelurahan_overlapping([bowtie])) == [AMPENAN_SELATAN]


def test_results_are_sorted_by_code(geo: Geography) -> None:
    everything = box(115.9, -8.8, 116.3, -8.4)
    found = codes(geo.kelurahan_overlapping([everything]))
    assert found == sorted(geo.kelurahan)
    assert codes(geo.neighbours_overlapping([everything])) == sorted(geo.neighbours)


def _border_pairs() -> list[dict[str, str]]:
    text = (
        files("schemas")
        .joinpath("data")
        .joinpath("mataram")
        .joinpath("neighbours_lombokbarat.csv")
        .read_text(encoding="utf-8")
    )
    return list(csv.DictReader(io.StringIO(text)))


def test_lombok_barat_desa_over_the_border_map_back_to_mataram(geo: Geography) -> None:
    assert len(geo.neighbours) == 21
    assert all(not a.in_mataram and a.code.startswith("52.01.") for a in geo.neighbours.values())
    # A warning over Jatisela (Gunungsari, Lombok Barat) covers no Mataram kelurahan...
    over_jatisela = geo.get(JATISELA).geometry.buffer(-0.0005)
    assert geo.kelurahan_overlapping([over_jatisela]) == []
    found = geo.neighbours_overlapping([over_jatisela])
    assert codes(found) == [JATISELA]
    assert found[0].kecamatan_name == "Gunungsari"
    # ...but Ampenan Utara is right across the border.
    assert AMPENAN_UTARA in codes(geo.adjacent_kelurahan(JATISELA))
    assert JATISELA in codes(geo.adjacent_desa(AMPENAN_UTARA))


def test_adjacency_matches_the_border_table(geo: Geography) -> None:
    expected: dict[str, set[str]] = {code: set() for code in geo.neighbours}
    for row in _border_pairs():
        expected[row["lb_desa_code"]].add(row["mataram_kel_code"])
    assert len(_border_pairs()) == 32
    for desa, kelurahan in expected.items():
        assert kelurahan, f"{desa} borders no kelurahan"
        assert codes(geo.adjacent_kelurahan(desa)) == sorted(kelurahan)
    assert codes(geo.adjacent_kelurahan(JATISELA)) == [AMPENAN_UTARA, "52.71.01.1013"]
    assert geo.adjacent_desa(AMPENAN_SELATAN) == []  # on the coast, no Lombok Barat border


def test_every_border_desa_resolves_to_itself(geo: Geography) -> None:
    for area in geo.neighbours.values():
        assert geo.neighbours_overlapping([area.geometry.buffer(-0.0005)]) == [area]


def test_unknown_codes_raise_a_clear_key_error(geo: Geography) -> None:
    # 52.71.01.1001 is the "Mataram" code many apps use; it does not exist (Ampenan starts .1004).
    with pytest.raises(KeyError, match=re.escape("unknown area code '52.71.01.1001'")):
        geo.get("52.71.01.1001")
    with pytest.raises(KeyError, match=re.escape("'52.71.01.1004'")):
        geo.get("5271011004")  # compact form: the message suggests the dotted one
    with pytest.raises(KeyError, match="not a Lombok Barat desa"):
        geo.adjacent_kelurahan(AMPENAN_SELATAN)
    with pytest.raises(KeyError, match="unknown area code"):
        geo.adjacent_kelurahan("52.01.09.9999")


def test_kecamatan_lookups(geo: Geography) -> None:
    assert geo.kecamatan_code_for_name("SELAPRANG") == "52.71.05"  # BMKG's 2022 spelling
    assert geo.kecamatan_code_for_name("Selaparang") == "52.71.05"
    assert geo.kecamatan_code_for_name("LABU API") == "52.01.08"
    assert geo.kecamatan_code_for_name("PENEBEL") is None
    assert len(geo.kelurahan_in_kecamatan("52.71.04")) == 5


def test_geography_is_parsed_once_per_process() -> None:
    assert load_geography() is load_geography()


def test_shapely_geometry_is_lon_lat(geo: Geography) -> None:
    minx, miny, maxx, maxy = shapely.union_all([a.geometry for a in geo.kelurahan.values()]).bounds
    assert 116.0 < minx < maxx < 116.2  # x = longitude
    assert -8.7 < miny < maxy < -8.5  # y = latitude
