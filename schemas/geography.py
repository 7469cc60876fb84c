"""Geography of Kota Mataram: its 50 kelurahan and the 21 Lombok Barat desa on its border.

Pure data and geometry, no Kafka. The data ships inside the package (``schemas/data/mataram``,
see PROVENANCE.md there) and is parsed once per process by :func:`load_geography`.

Coordinates are WGS84 lon/lat (shapely x = lon, y = lat). Areas are keyed by the dotted
Kemendagri code (``52.71.01.1004``), the form BMKG's ``adm4`` uses.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from types import MappingProxyType
from typing import Any, TypedDict

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

#: Overlap below this many square degrees counts as "touching", not "covering".
#: 1e-10 deg² is about 1.2 m² at Mataram's latitude: far above floating-point noise along
#: shared edges, far below anything a BMKG polygon (3-decimal, ~110 m grid) can mean.
OVERLAP_EPSILON_DEG2 = 1e-10

#: Polygon parts smaller than this are dropped at load: the source has degenerate 3-point
#: slivers (Ampenan Selatan's is ~6e-16 deg²) that carry no area but confuse point lookups.
_SLIVER_DEG2 = 1e-12

_DATA_PACKAGE = "schemas"
_DATA_DIR = ("data", "mataram")
_CODE_RE = re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")


@dataclass(frozen=True)
class Area:
    """A kelurahan of Mataram, or a Lombok Barat desa next to it."""

    code: str  # dotted Kemendagri, e.g. "52.71.01.1004"
    name: str  # Kepmendagri 2025 spelling
    kecamatan_code: str
    kecamatan_name: str
    # lon/lat; excluded from eq/repr: identity is the code, and a repr of 80 vertices helps nobody.
    geometry: BaseGeometry = field(compare=False, repr=False)
    in_mataram: bool

    def signal_fields(self) -> AreaFields:
        """The place fields every ``Signal`` about this area carries."""
        return AreaFields(area_code=self.code, area_name=self.name,
                          kecamatan_code=self.kecamatan_code, kecamatan_name=self.kecamatan_name)


class AreaFields(TypedDict):
    area_code: str
    area_name: str
    kecamatan_code: str
    kecamatan_name: str


class Geography:
    """Lookups over the packaged areas. Build it with :func:`load_geography`."""

    def __init__(
        self,
        kelurahan: Iterable[Area],
        neighbours: Iterable[Area],
        kecamatan_names: Mapping[str, str],
        borders: Iterable[tuple[str, str]],
        name_variants: Mapping[str, str] | None = None,
    ) -> None:
        """``borders`` holds (kelurahan code, LB desa code) pairs; ``name_variants`` maps a
        spelling variant to its Kemendagri code."""
        kel = sorted(kelurahan, key=lambda a: a.code)
        nbr = sorted(neighbours, key=lambda a: a.code)
        self.kelurahan: Mapping[str, Area] = MappingProxyType({a.code: a for a in kel})
        self.neighbours: Mapping[str, Area] = MappingProxyType({a.code: a for a in nbr})
        self.kecamatan_names: Mapping[str, str] = MappingProxyType(dict(kecamatan_names))
        self._kel_list = kel
        self._nbr_list = nbr
        # STRtree: the index order is our list order, so query results map straight back.
        self._kel_tree = STRtree([a.geometry for a in kel])
        self._nbr_tree = STRtree([a.geometry for a in nbr])

        desa_to_kel: dict[str, set[str]] = {code: set() for code in self.neighbours}
        kel_to_desa: dict[str, set[str]] = {code: set() for code in self.kelurahan}
        for kel_code, desa_code in borders:
            if kel_code not in self.kelurahan or desa_code not in self.neighbours:
                raise ValueError(f"border pair ({kel_code}, {desa_code}) names an unknown area")
            desa_to_kel[desa_code].add(kel_code)
            kel_to_desa[kel_code].add(desa_code)
        self._desa_to_kel = {k: sorted(v) for k, v in desa_to_kel.items()}
        self._kel_to_desa = {k: sorted(v) for k, v in kel_to_desa.items()}

        # Name fallback for kecamatan (BMKG descriptions carry names only, e.g. "SELAPRANG").
        by_name: dict[str, str] = {_name_key(n): c for c, n in self.kecamatan_names.items()}
        for variant, code in (name_variants or {}).items():
            if code in self.kecamatan_names:
                by_name.setdefault(_name_key(variant), code)
        self._kecamatan_by_name = by_name

    def get(self, code: str) -> Area:
        """The kelurahan or LB desa with this dotted Kemendagri code."""
        area = self.kelurahan.get(code) or self.neighbours.get(code)
        if area is not None:
            return area
        hint = ""
        if re.fullmatch(r"\d{10}", code):
            dotted = f"{code[:2]}.{code[2:4]}.{code[4:6]}.{code[6:]}"
            hint = (
                f"; {code!r} looks like a compact code: if it is Kemendagri, try {dotted!r}"
                " (beware: BPS codes can share the same digits, see PROVENANCE.md)"
            )
        elif not _CODE_RE.match(code):
            hint = "; expected a dotted Kemendagri code like '52.71.01.1004'"
        raise KeyError(
            f"unknown area code {code!r}: not one of Mataram's {len(self.kelurahan)} kelurahan "
            f"or the {len(self.neighbours)} Lombok Barat desa on its border{hint}"
        )

    def kelurahan_overlapping(self, polygons: Sequence[BaseGeometry]) -> list[Area]:
        """Mataram kelurahan whose intersection with the union of ``polygons`` has positive
        area (touching an edge does not count), sorted by code."""
        return _overlapping(self._kel_tree, self._kel_list, polygons)

    def neighbours_overlapping(self, polygons: Sequence[BaseGeometry]) -> list[Area]:
        """Lombok Barat border desa overlapped with positive area, sorted by code."""
        return _overlapping(self._nbr_tree, self._nbr_list, polygons)

    def adjacent_kelurahan(self, desa_code: str) -> list[Area]:
        """Mataram kelurahan that share a border with this LB desa, sorted by code."""
        if desa_code not in self._desa_to_kel:
            self.get(desa_code)  # raises the explanatory KeyError for unknown codes
            raise KeyError(f"{desa_code!r} is a Mataram kelurahan, not a Lombok Barat desa")
        return [self.kelurahan[c] for c in self._desa_to_kel[desa_code]]

    def adjacent_desa(self, kelurahan_code: str) -> list[Area]:
        """Lombok Barat desa bordering this Mataram kelurahan (often none), sorted by code."""
        if kelurahan_code not in self._kel_to_desa:
            self.get(kelurahan_code)
            raise KeyError(f"{kelurahan_code!r} is a Lombok Barat desa, not a Mataram kelurahan")
        return [self.neighbours[c] for c in self._kel_to_desa[kelurahan_code]]

    def kelurahan_at(self, lat: float, lon: float) -> Area | None:
        """The Mataram kelurahan containing the point, or None (outside Mataram, at sea, or
        not a finite coordinate). A point on a shared boundary gets the lowest code, so the
        answer is deterministic."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        hits = self._kel_tree.query(Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return min((self._kel_list[int(i)] for i in hits), key=lambda a: a.code)

    def kelurahan_in_kecamatan(self, kecamatan_code: str) -> list[Area]:
        """The kelurahan of one Mataram kecamatan, sorted by code."""
        return [a for a in self._kel_list if a.kecamatan_code == kecamatan_code]

    def kecamatan_code_for_name(self, name: str) -> str | None:
        """Kecamatan code for a name as BMKG or people write it ("SELAPRANG", "Labu Api"),
        ignoring case, spaces and punctuation; None if unknown. A fallback only: match on
        codes or polygons where you can."""
        return self._kecamatan_by_name.get(_name_key(name))


def _name_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def _overlapping(tree: Any, areas: Sequence[Area], polygons: Sequence[BaseGeometry]) -> list[Area]:
    # make_valid: warning polygons may self-intersect; GEOS set operations need valid input.
    shapes = [shapely.make_valid(p) for p in polygons if p is not None and not p.is_empty]
    if not shapes:
        return []
    union = shapely.union_all(shapes)
    hits = tree.query(union, predicate="intersects")
    found = [
        areas[int(i)]
        for i in hits
        if areas[int(i)].geometry.intersection(union).area > OVERLAP_EPSILON_DEG2
    ]
    return sorted(found, key=lambda a: a.code)


def _read_text(name: str) -> str:
    resource = files(_DATA_PACKAGE)
    for part in (*_DATA_DIR, name):
        resource = resource.joinpath(part)
    return resource.read_text(encoding="utf-8")


def _read_csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_read_text(name))))


def _clean_geometry(geom: BaseGeometry, code: str) -> BaseGeometry:
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in getattr(geom, "geoms", [geom]) if isinstance(p, Polygon)]
    parts = [p for p in parts if p.area >= _SLIVER_DEG2]
    if not parts:
        raise ValueError(f"area {code}: no polygon with positive area in the packaged data")
    return MultiPolygon(parts)


def _read_features(name: str) -> dict[str, tuple[str, BaseGeometry]]:
    """code -> (source name, cleaned geometry)."""
    out: dict[str, tuple[str, BaseGeometry]] = {}
    for feature in json.loads(_read_text(name))["features"]:
        props = feature["properties"]
        code = props["kode"]
        out[code] = (props["nama"], _clean_geometry(shape(feature["geometry"]), code))
    return out


def _build_areas(
    rows: Sequence[dict[str, str]],
    features: Mapping[str, tuple[str, BaseGeometry]],
    kecamatan_names: Mapping[str, str],
    *,
    in_mataram: bool,
) -> list[Area]:
    areas: list[Area] = []
    for row in rows:
        code = row["code"]
        if code not in features:
            raise ValueError(f"area {code} ({row['name']}) has no polygon in the packaged data")
        geo_name, geometry = features[code]
        if geo_name != row["name"]:
            raise ValueError(f"area {code}: areas.csv says {row['name']!r}, GeoJSON {geo_name!r}")
        kec = row["parent_code"]
        areas.append(Area(code, row["name"], kec, kecamatan_names[kec], geometry, in_mataram))
    extra = set(features) - {a.code for a in areas}
    if extra:
        raise ValueError(f"polygons without an areas.csv row: {sorted(extra)}")
    return areas


@functools.cache
def load_geography() -> Geography:
    """Parse the packaged Mataram data (once per process)."""
    rows = _read_csv("areas.csv")
    kecamatan_names = {r["code"]: r["name"] for r in rows if r["level"] == "kecamatan"}
    leaves = [r for r in rows if r["level"] == "kelurahan/desa"]
    kelurahan = _build_areas(
        [r for r in leaves if r["role"] == "mataram"],
        _read_features("mataram_kelurahan.geojson"),
        kecamatan_names,
        in_mataram=True,
    )
    neighbours = _build_areas(
        [r for r in leaves if r["role"] == "neighbour"],
        _read_features("lombokbarat_neighbour_desa.geojson"),
        kecamatan_names,
        in_mataram=False,
    )
    borders = [
        (r["mataram_kel_code"], r["lb_desa_code"]) for r in _read_csv("neighbours_lombokbarat.csv")
    ]
    variants = {r["variant"]: r["kemendagri_code"] for r in _read_csv("name_variants.csv")}
    return Geography(kelurahan, neighbours, kecamatan_names, borders, variants)
