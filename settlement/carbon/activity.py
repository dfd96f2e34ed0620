"""The national zero-carbon park method for one year, from an activity-data file (DOMAIN.md §4).

``E_park = E_energy + E_process`` with ``E_energy = E_fuel + E_conversion + E_elec + E_heat``:

* ``E_fuel = sum(quantity * NCV * EF * oxidation)`` per fuel and activity;
* ``E_conversion = sum(input emissions) - sum(output emissions)`` (carbon balance);
* ``E_elec = sum(E_in * Ef) - sum(E_out * Ef)``, Ef = 0 for direct green, green-traded and
  certificate-covered electricity and the park factor for grid electricity;
* ``E_heat = fossil heat in * EF - fossil heat out * EF`` (non-fossil heat 0);
* ``E_process = sum(product * EF)``; products marked ``report_separately`` (battery cells) are
  listed but not added to the park total.

Energy in tce: fuels and conversion by their standard-coal coefficients, electricity on the
stated basis (calorific or equal-value), heat by its coefficient. Default factors come from
a park scenario's ``carbon`` settings; every factor can be overridden in the file. The file
format is documented with a complete example in ``settlement/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.scenario.model import CarbonSettings
from infra.validation import text_file_problem

UNIT_SCALE = {"m3": ("volume", 1.0), "10^4 m3": ("volume", 1e4), "kg": ("mass", 1.0), "t": ("mass", 1e3)}
ELEC_IN_TYPES = ("grid", "direct_green", "green_traded", "certificate_covered")
GREEN_IN_TYPES = ("direct_green", "green_traded", "certificate_covered")


class ActivityError(ValueError):
    """The activity file cannot be used; ``problems`` names each field and rule."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"activity file {source} is invalid:\n  - " + "\n  - ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FuelUse(_Strict):
    fuel: str = Field(min_length=1)
    activity: str = "combustion"
    quantity: float = Field(ge=0)
    unit: Literal["m3", "10^4 m3", "kg", "t"]
    ncv_mj_per_unit: float | None = Field(None, gt=0, description="net calorific value per `unit`")
    ef_tco2_per_tj: float | None = Field(None, gt=0)
    oxidation_fraction: float | None = Field(None, ge=0, le=1)
    kgce_per_unit: float | None = Field(None, gt=0, description="standard coal per `unit`")


class Conversion(_Strict):
    inputs: list[FuelUse] = Field(default_factory=list)
    outputs: list[FuelUse] = Field(default_factory=list)


class ElectricityFlows(_Strict):
    grid: float = Field(0.0, ge=0)
    direct_green: float = Field(0.0, ge=0)
    green_traded: float = Field(0.0, ge=0)
    certificate_covered: float = Field(0.0, ge=0)


class ElectricityOut(_Strict):
    grid: float = Field(0.0, ge=0, description="exported electricity of fossil origin (credited at Ef)")
    green: float = Field(0.0, ge=0, description="exported green electricity (Ef = 0)")


class Electricity(_Strict):
    in_: ElectricityFlows = Field(default_factory=ElectricityFlows, alias="in")
    out: ElectricityOut = Field(default_factory=ElectricityOut)


class HeatFlows(_Strict):
    fossil_gj: float = Field(0.0, ge=0)
    non_fossil_gj: float = Field(0.0, ge=0)


class Heat(_Strict):
    in_: HeatFlows = Field(default_factory=HeatFlows, alias="in")
    out: HeatFlows = Field(default_factory=HeatFlows)
    ef_tco2_per_gj: float | None = Field(None, gt=0, description="measured factor for fossil heat")


class Product(_Strict):
    product: str = Field(min_length=1)
    quantity_t: float = Field(ge=0)
    ef_tco2_per_t: float = Field(ge=0)
    report_separately: bool = False


class ActivityFile(_Strict):
    park: str = Field(min_length=1)
    year: int = Field(ge=2000, le=2100)
    electricity_tce_basis: Literal["calorific", "equal_value"] | None = None
    kgce_per_kwh: float | None = Field(None, gt=0, description="overrides the basis coefficient")
    fuels: list[FuelUse] = Field(default_factory=list)
    conversion: Conversion = Field(default_factory=Conversion)
    electricity: Electricity = Field(default_factory=Electricity)
    heat: Heat = Field(default_factory=Heat)
    process: list[Product] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> ActivityFile:
        if (
            not (self.fuels or self.conversion.inputs or self.process)
            and self.electricity.in_ == ElectricityFlows()
            and self.heat.in_ == HeatFlows()
        ):
            raise ValueError(
                "the file has no activity data (fuels, conversion, electricity, heat or process)"
            )
        return self


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out.replace("in_", "in") or "(file)"


def parse_activity(raw: Any, source: str = "(data)", carbon: CarbonSettings | None = None) -> ActivityFile:
    """The validated file; with ``carbon``, a file with field errors also gets its fuel lines
    checked against the known fuels, so every problem is reported in one go."""
    if not isinstance(raw, dict):
        raise ActivityError(source, ["the file must hold a mapping at the top level"])
    try:
        return ActivityFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{_loc(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        ]
        if carbon is not None:
            problems += _fuel_problems(raw, carbon)
        raise ActivityError(source, problems) from exc


def _fuel_problems(raw: dict[str, Any], carbon: CarbonSettings) -> list[str]:
    """Problems of the fuel lines that are well-formed on their own (unknown fuel, missing factors)."""
    conversion = raw.get("conversion") if isinstance(raw.get("conversion"), dict) else {}
    sections = {
        "fuels": raw.get("fuels"),
        "conversion.inputs": conversion.get("inputs"),
        "conversion.outputs": conversion.get("outputs"),
    }
    problems: list[str] = []
    for section, items in sections.items():
        for i, item in enumerate(items if isinstance(items, list) else []):
            try:
                use = FuelUse.model_validate(item)
            except ValidationError:
                continue  # its field errors are reported already
            fuel_line(section, i, use, carbon, problems)
    return problems


def read_activity(path: Path, carbon: CarbonSettings | None = None) -> ActivityFile:
    problem = text_file_problem(path, "activity file")
    if problem:
        raise ActivityError(str(path), [problem])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ActivityError(str(path), ["file not found"]) from exc
    except yaml.YAMLError as exc:
        raise ActivityError(str(path), [f"not valid YAML: {exc}"]) from exc
    return parse_activity(raw, str(path), carbon)


@dataclass(frozen=True)
class FuelLine:
    section: str
    fuel: str
    activity: str
    quantity: float
    unit: str
    tco2: float
    tce: float
    factors: dict[str, float]


@dataclass(frozen=True)
class ParkAccount:
    park: str
    year: int
    basis: str
    kgce_per_kwh: float
    terms_tco2: dict[str, float]
    energy_tce: dict[str, float]
    fuel_lines: list[FuelLine]
    separate_tco2: dict[str, float]
    indicator_tco2_per_tce: float | None
    band: dict[str, Any] | None
    verdict: str
    clean_energy_share: float | None
    direct_green_share: float | None
    factor_version: str

    @property
    def total_tco2(self) -> float:
        return self.terms_tco2["E_park"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "park": self.park,
            "year": self.year,
            "factor_version": self.factor_version,
            "electricity_tce_basis": self.basis,
            "kgce_per_kwh": self.kgce_per_kwh,
            "emissions_tco2": self.terms_tco2,
            "emissions_1e4_tco2": {k: v / 1e4 for k, v in self.terms_tco2.items()},
            "reported_separately_tco2": self.separate_tco2,
            "energy_tce": self.energy_tce,
            "fuels": [vars(f) for f in self.fuel_lines],
            "indicator_tco2_per_tce": self.indicator_tco2_per_tce,
            "band": self.band,
            "verdict": self.verdict,
            "clean_energy_share": self.clean_energy_share,
            "direct_green_share": self.direct_green_share,
        }


def fuel_line(
    section: str, index: int, use: FuelUse, carbon: CarbonSettings, problems: list[str]
) -> FuelLine | None:
    """Emissions and energy of one fuel line; factors per the line's own unit, any may be overridden."""
    where = f"{section}[{index}] ({use.fuel})"
    known = carbon.fuels.get(use.fuel)
    if known is None:
        given = {
            "ncv_mj_per_unit": use.ncv_mj_per_unit,
            "ef_tco2_per_tj": use.ef_tco2_per_tj,
            "kgce_per_unit": use.kgce_per_unit,
        }
        missing = [name for name, value in given.items() if value is None]
        if missing:
            problems.append(
                f"{where}: not a fuel of the factor set ({', '.join(sorted(carbon.fuels))}); give {', '.join(missing)} per {use.unit}"
            )
            return None
        ncv, ef, kgce = use.ncv_mj_per_unit, use.ef_tco2_per_tj, use.kgce_per_unit
        ox = 1.0 if use.oxidation_fraction is None else use.oxidation_fraction
    else:
        dim, scale = UNIT_SCALE[use.unit]
        factor_dim, factor_scale = UNIT_SCALE[known.unit]
        if dim != factor_dim:
            problems.append(
                f"{where}.unit: {use.unit!r} is a {dim}, but {use.fuel} is measured per {known.unit} ({factor_dim})"
            )
            return None
        ratio = scale / factor_scale
        ncv = use.ncv_mj_per_unit or known.ncv_mj_per_unit * ratio
        kgce = use.kgce_per_unit or known.kgce_per_unit * ratio
        ef = use.ef_tco2_per_tj or known.ef_tco2_per_tj
        ox = known.oxidation_fraction if use.oxidation_fraction is None else use.oxidation_fraction
    assert ncv is not None and ef is not None and kgce is not None
    return FuelLine(
        section=section,
        fuel=use.fuel,
        activity=use.activity,
        quantity=use.quantity,
        unit=use.unit,
        tco2=use.quantity * ncv * 1e-6 * ef * ox,
        tce=use.quantity * kgce / 1000.0,
        factors={
            "ncv_mj_per_unit": ncv,
            "ef_tco2_per_tj": ef,
            "oxidation_fraction": ox,
            "kgce_per_unit": kgce,
        },
    )


def band_for(carbon: CarbonSettings, annual_tce: float) -> dict[str, Any] | None:
    for b in carbon.indicator_bands:
        if annual_tce >= b.min_annual_tce and (b.max_annual_tce is None or annual_tce < b.max_annual_tce):
            return b.model_dump()
    return None


def verdict_for(indicator: float | None, band: dict[str, Any] | None) -> str:
    if indicator is None:
        return "not assessed (no energy use)"
    if band is None:
        return "not assessed (annual energy use outside every indicator band)"
    return "pass" if indicator <= band["max_tco2_per_tce"] + 1e-12 else "fail"


def park_account(activity: ActivityFile, carbon: CarbonSettings, source: str = "(data)") -> ParkAccount:
    """Every term of the park method for one year; all problems are reported together."""
    problems: list[str] = []
    lines = [fuel_line("fuels", i, u, carbon, problems) for i, u in enumerate(activity.fuels)]
    ins = [
        fuel_line("conversion.inputs", i, u, carbon, problems)
        for i, u in enumerate(activity.conversion.inputs)
    ]
    outs = [
        fuel_line("conversion.outputs", i, u, carbon, problems)
        for i, u in enumerate(activity.conversion.outputs)
    ]
    if problems:
        raise ActivityError(source, problems)
    fuels = [x for x in lines if x is not None]
    conv_in = [x for x in ins if x is not None]
    conv_out = [x for x in outs if x is not None]

    basis = activity.electricity_tce_basis or carbon.electricity_tce_basis
    kgce_per_kwh = activity.kgce_per_kwh or carbon.kgce_per_kwh[basis]
    ef = carbon.grid_ef_tco2_per_mwh
    el = activity.electricity
    heat_ef = activity.heat.ef_tco2_per_gj or carbon.fossil_heat_ef_tco2_per_gj
    heat = activity.heat

    e_fuel = sum(f.tco2 for f in fuels)
    e_conv = sum(f.tco2 for f in conv_in) - sum(f.tco2 for f in conv_out)
    e_elec = el.in_.grid * ef - el.out.grid * ef
    e_heat = heat.in_.fossil_gj * heat_ef - heat.out.fossil_gj * heat_ef
    e_process = sum(p.quantity_t * p.ef_tco2_per_t for p in activity.process if not p.report_separately)
    e_energy = e_fuel + e_conv + e_elec + e_heat
    terms = {
        "E_fuel": e_fuel,
        "E_conversion": e_conv,
        "E_elec": e_elec,
        "E_heat": e_heat,
        "E_indirect": e_elec + e_heat,
        "E_energy": e_energy,
        "E_process": e_process,
        "E_park": e_energy + e_process,
    }
    elec_in = sum(getattr(el.in_, t) for t in ELEC_IN_TYPES)
    elec_mwh = elec_in - el.out.grid - el.out.green
    heat_gj = heat.in_.fossil_gj + heat.in_.non_fossil_gj - heat.out.fossil_gj - heat.out.non_fossil_gj
    energy = {
        "fuels": sum(f.tce for f in fuels),
        "conversion": sum(f.tce for f in conv_in) - sum(f.tce for f in conv_out),
        "electricity": elec_mwh * kgce_per_kwh,
        "heat": heat_gj * carbon.heat_kgce_per_mj,
    }
    energy["total"] = sum(energy.values())
    total_tce = energy["total"]
    indicator = terms["E_park"] / total_tce if total_tce > 0 else None
    band = band_for(carbon, total_tce)
    green_mwh = sum(getattr(el.in_, t) for t in GREEN_IN_TYPES)
    clean_tce = green_mwh * kgce_per_kwh + heat.in_.non_fossil_gj * carbon.heat_kgce_per_mj
    return ParkAccount(
        park=activity.park,
        year=activity.year,
        basis=basis,
        kgce_per_kwh=kgce_per_kwh,
        terms_tco2=terms,
        energy_tce=energy,
        fuel_lines=fuels + conv_in + conv_out,
        separate_tco2={
            p.product: p.quantity_t * p.ef_tco2_per_t for p in activity.process if p.report_separately
        },
        indicator_tco2_per_tce=indicator,
        band=band,
        verdict=verdict_for(indicator, band),
        clean_energy_share=clean_tce / total_tce if total_tce > 0 else None,
        direct_green_share=el.in_.direct_green / elec_in if elec_in > 0 else None,
        factor_version=carbon.version,
    )
