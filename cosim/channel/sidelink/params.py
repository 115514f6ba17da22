"""The sidelink medium's parameters: defaults per technology, checks that name the key.

:func:`SidelinkParams.from_mapping` turns the mapping given under the medium's key into a
frozen :class:`SidelinkParams` and reports every bad value at once, one line each naming its
key (``channel.sidelink.mcs: ...``), as :class:`SidelinkParameterError`. Defaults that depend on
the technology (sub-carrier spacing, sensing window) are resolved there; docs/medium.md lists
which standard clause each parameter follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from radio_models import sidelink_phy as phy

__all__ = ["SidelinkParams", "SidelinkParameterError", "TECHNOLOGIES", "MAX_SDU_BYTES", "reselection_counter_range"]

TECHNOLOGIES = ("lte_mode4", "nr_mode2")

MAX_SDU_BYTES = {"lte_mode4": 8188, "nr_mode2": 9000}
"""Largest packet (PDCP SDU) per technology: TS 36.323 §4.3.1 (8188 octets), TS 38.323 §4.3.1
(9000 bytes). Below it a packet goes to the sidelink whole and RLC cuts it into transport blocks."""

# TS 38.214 Table 8.1.4-2: T_proc,1 in slots per sub-carrier spacing (upper bound of T1; T3 of re-evaluation)
NR_T_PROC_1 = {15: 3, 30: 5, 60: 9}


class SidelinkParameterError(ValueError):
    """One or more bad sidelink parameters; ``problems`` holds (key, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{k}: {m}" for k, m in self.problems))


def reselection_counter_range(reservation_interval_ms: float) -> tuple[int, int]:
    """SL_RESOURCE_RESELECTION_COUNTER range for a reservation interval (TS 38.321 §5.22.1.1;
    TS 36.321 §5.14.1.1 gives the same [5, 15] / [10, 30] / [25, 75] at 100 / 50 / 20 ms)."""
    if reservation_interval_ms >= 100:
        return 5, 15
    scale = 100.0 / max(20.0, reservation_interval_ms)
    return int(math.floor(5 * scale)), int(math.floor(15 * scale))


@dataclass(frozen=True)
class SidelinkParams:
    """Parameters of the sidelink medium (see docs/medium.md for their clauses and defaults).

    ``None`` in a field means "the technology's default", resolved by :meth:`from_mapping`.
    """

    technology: str = "nr_mode2"
    bandwidth_mhz: int = 20
    subcarrier_spacing_khz: int | None = None  # LTE 15; NR 30
    subchannel_size_rb: int = 10
    num_subchannels: int | None = None  # as many as fit in the bandwidth
    mcs: int = 11
    tx_power_dbm: float = 23.0
    noise_figure_db: float = 9.0
    sensitivity_dbm: float = -90.5
    rsrp_threshold_dbm: float = -110.0
    min_candidate_share: float = 0.2
    reservation_interval_ms: int = 100
    reservation_periods_ms: tuple[int, ...] | None = None  # default: (reservation_interval_ms,)
    reselection_counter: tuple[int, int] | None = None  # default: by the reservation interval
    p_keep: float = 0.0
    t1_slots: int = 1
    selection_window_ms: float | None = None  # min(100, reservation_interval_ms)
    dynamic_window_ms: float = 5.0
    sensing_window_ms: int | None = None  # LTE 1000; NR 1100
    blind_retransmissions: int = 0
    re_evaluation: bool | None = None  # NR true; LTE has none
    max_subchannels_per_tb: int | None = None
    cbr_threshold_dbm: float = -94.0
    reception: str = "bler"
    implementation_loss_db: float = 3.0
    bler_sigma_db: float = 2.6
    bler_table: str | None = None
    in_band_emission: bool = False
    in_band_emission_wxyz_db: tuple[float, float, float, float] | None = None  # LTE (3, 6, 3, 3); NR (0, 0, 0, 0)
    range_m: float | None = None
    pdr_bin_m: float = 50.0
    key: str = field(default="channel.sidelink", compare=False, repr=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, *, key: str = "channel.sidelink") -> SidelinkParams:
        """Checked parameters from a mapping (unknown keys and bad values are all reported)."""
        values = dict(values or {})
        names = [f.name for f in fields(cls) if f.name != "key"]
        problems: list[tuple[str, str]] = []
        for k in sorted(set(values) - set(names)):
            problems.append((f"{key}.{k}", f"unknown key (allowed: {', '.join(names)})"))
        raw = {k: v for k, v in values.items() if k in names}
        defaults = {f.name: f.default for f in fields(cls)}
        out: dict[str, Any] = {}

        def bad(name: str, message: str, value: Any) -> None:
            problems.append((f"{key}.{name}", f"{message} (got {value!r})"))

        def get(name: str) -> Any:
            return raw.get(name, defaults[name])

        def integer(name: str, lo: int | None = None, hi: int | None = None, allowed=None, none=False):
            v = get(name)
            if v is None and none:
                out[name] = None
                return
            ok = isinstance(v, int) and not isinstance(v, bool)
            if ok and allowed is not None:
                ok = v in allowed
            if ok and lo is not None:
                ok = v >= lo
            if ok and hi is not None:
                ok = v <= hi
            if not ok:
                if allowed is not None:
                    bad(name, f"must be one of {', '.join(map(str, allowed))}", v)
                else:
                    rng = f" in [{lo}, {hi}]" if lo is not None and hi is not None else (f" >= {lo}" if lo is not None else "")
                    bad(name, f"must be an integer{rng}" + (" or null" if none else ""), v)
                return
            out[name] = v

        def number(name: str, lo: float | None = None, hi: float | None = None, *, gt=False, none=False):
            v = get(name)
            if v is None and none:
                out[name] = None
                return
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok and lo is not None:
                ok = v > lo if gt else v >= lo
            if ok and hi is not None:
                ok = v <= hi
            if not ok:
                lo_s = "" if lo is None else (f" > {lo:g}" if gt else f" >= {lo:g}")
                hi_s = "" if hi is None else f" <= {hi:g}"
                bad(name, f"must be a finite number{lo_s}{' and' if lo_s and hi_s else ''}{hi_s}" + (" or null" if none else ""), v)
                return
            out[name] = float(v)

        def choice(name: str, allowed, none=False):
            v = get(name)
            if v is None and none:
                out[name] = None
                return
            if v not in allowed or isinstance(v, bool):
                bad(name, f"must be one of {', '.join(map(str, allowed))}" + (" or null" if none else ""), v)
                return
            out[name] = v

        choice("technology", TECHNOLOGIES)
        tech = out.get("technology", "nr_mode2")
        integer("bandwidth_mhz", allowed=(10, 20))
        default_scs = 15 if tech == "lte_mode4" else 30
        integer("subcarrier_spacing_khz", allowed=(15,) if tech == "lte_mode4" else (15, 30, 60), none=True)
        if "subcarrier_spacing_khz" in out and out["subcarrier_spacing_khz"] is None:
            out["subcarrier_spacing_khz"] = default_scs
        scs = out.get("subcarrier_spacing_khz", default_scs)
        bw = out.get("bandwidth_mhz", 20)
        n_rb = phy.LTE_N_RB[bw] if tech == "lte_mode4" else phy.NR_N_RB[(bw, scs)]
        if tech == "lte_mode4":
            integer("subchannel_size_rb", lo=3, hi=n_rb)
        else:
            # TS 38.331 sl-SubchannelSize
            integer("subchannel_size_rb", allowed=tuple(s for s in (10, 12, 15, 20, 25, 50, 75, 100) if s <= n_rb))
        size = out.get("subchannel_size_rb", 10)
        integer("num_subchannels", lo=1, hi=max(1, n_rb // max(1, size)), none=True)
        integer("mcs", lo=0, hi=28)
        number("tx_power_dbm", -40.0, 33.0)
        number("noise_figure_db", 0.0, 30.0)
        number("sensitivity_dbm", -150.0, 0.0)
        # SL-ThresPSSCH-RSRP / SL-Thres-RSRP: -128 + (n - 1) x 2 dBm, n = 1..65 (TS 36.331 / 38.331)
        number("rsrp_threshold_dbm", -128.0, 0.0)
        if tech == "lte_mode4":
            number("min_candidate_share", 0.2, 0.2)  # TS 36.213 §14.1.1.6 step 7: 20 %
        else:
            choice("min_candidate_share", (0.2, 0.35, 0.5))  # sl-TxPercentageList
            if "min_candidate_share" in out:
                out["min_candidate_share"] = float(out["min_candidate_share"])
        if tech == "lte_mode4":  # restrictResourceReservationPeriod x 100 ms, and 20 / 50 ms
            integer("reservation_interval_ms", allowed=(20, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000))
        else:  # sl-ResourceReservePeriodList: 0 (none), 1..99, 100..1000 in steps of 100
            integer("reservation_interval_ms", allowed=tuple(range(1, 100)) + tuple(range(100, 1001, 100)))
        rri = out.get("reservation_interval_ms", 100)
        periods = get("reservation_periods_ms")
        if periods is None:
            out["reservation_periods_ms"] = (rri,)
        elif (not isinstance(periods, (list, tuple)) or not periods
              or not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 1000 for p in periods)):
            bad("reservation_periods_ms", "must be a non-empty list of integers in [1, 1000] (ms) or null", periods)
        else:
            out["reservation_periods_ms"] = tuple(sorted(set(periods)))
        counter = get("reselection_counter")
        if counter is None:
            out["reselection_counter"] = reselection_counter_range(rri)
        elif (not isinstance(counter, (list, tuple)) or len(counter) != 2
              or not all(isinstance(c, int) and not isinstance(c, bool) for c in counter)
              or not 1 <= counter[0] <= counter[1] <= 1000):
            bad("reselection_counter", "must be [low, high] with 1 <= low <= high <= 1000, or null", counter)
        else:
            out["reselection_counter"] = (int(counter[0]), int(counter[1]))
        number("p_keep", 0.0, 0.8)  # probResourceKeep / sl-ProbResourceKeep: 0 .. 0.8
        t1_max = 4 if tech == "lte_mode4" else NR_T_PROC_1[scs]
        integer("t1_slots", lo=0, hi=t1_max)
        if tech == "lte_mode4":  # TS 36.213 §14.1.1.6: 20 <= T2 <= 100
            number("selection_window_ms", 20.0, 100.0, none=True)
        else:  # T2min (sl-SelectionWindowList: 1, 5, 10, 20 ms) <= T2 <= packet delay budget
            number("selection_window_ms", 1.0, 1000.0, none=True)
        if "selection_window_ms" in out and out["selection_window_ms"] is None:
            out["selection_window_ms"] = float(min(100, rri))
        sel = out.get("selection_window_ms")
        if sel is not None and sel > rri:
            bad("selection_window_ms", f"must not exceed reservation_interval_ms ({rri})", sel)
        number("dynamic_window_ms", 1.0, 1000.0)
        if tech == "lte_mode4":
            integer("sensing_window_ms", allowed=(1000,), none=True)
            if out.get("sensing_window_ms") is None:
                out["sensing_window_ms"] = 1000
        else:
            integer("sensing_window_ms", allowed=(100, 1100), none=True)  # sl-SensingWindow
            if out.get("sensing_window_ms") is None:
                out["sensing_window_ms"] = 1100
        integer("blind_retransmissions", allowed=(0, 1))
        # NR Release 16: a selected resource not yet signalled is checked again T_proc,1 before
        # it is used (TS 38.214 §8.1.4, TS 38.321 §5.22.1.1); LTE mode 4 has no such step
        re_eval = get("re_evaluation")
        if re_eval is None:
            out["re_evaluation"] = tech == "nr_mode2"
        elif not isinstance(re_eval, bool):
            bad("re_evaluation", "must be true, false or null (the technology's default)", re_eval)
        elif re_eval and tech == "lte_mode4":
            bad("re_evaluation", "is NR Release 16 (TS 38.214 §8.1.4); lte_mode4 has none, so it must be false or null",
                re_eval)
        else:
            out["re_evaluation"] = re_eval
        integer("max_subchannels_per_tb", lo=1, hi=max(1, n_rb // max(1, size)), none=True)
        number("cbr_threshold_dbm", -150.0, 0.0)
        choice("reception", ("bler", "threshold", "table"))
        number("implementation_loss_db", -10.0, 20.0)
        number("bler_sigma_db", 0.0, 20.0, gt=True)
        choice("bler_table", tuple(phy.R1_160284_CURVES), none=True)
        if out.get("reception") == "table" and out.get("bler_table") is None and "bler_table" in out:
            bad("bler_table", "reception 'table' needs a table name", None)
        if not isinstance(get("in_band_emission"), bool):
            bad("in_band_emission", "must be true or false", get("in_band_emission"))
        else:
            out["in_band_emission"] = get("in_band_emission")
        relax = get("in_band_emission_wxyz_db")
        if relax is not None:
            if (not isinstance(relax, (list, tuple)) or len(relax) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               and 0.0 <= v <= 30.0 for v in relax)):
                bad("in_band_emission_wxyz_db", "must be [W, X, Y, Z]: four numbers in [0, 30] (dB), or null", relax)
            else:
                out["in_band_emission_wxyz_db"] = tuple(float(v) for v in relax)
        number("range_m", 0.0, 1e5, gt=True, none=True)
        number("pdr_bin_m", 0.0, 1e4, gt=True)
        if problems:
            raise SidelinkParameterError(problems)
        for name in ("bandwidth_mhz", "subchannel_size_rb", "mcs", "reservation_interval_ms", "t1_slots",
                     "blind_retransmissions", "subcarrier_spacing_khz", "sensing_window_ms"):
            if out.get(name) is not None:
                out[name] = int(out[name])
        return cls(**out, key=key)

    def as_dict(self) -> dict[str, Any]:
        """Every parameter (resolved), as plain YAML-able values."""
        out = {}
        for f in fields(self):
            if f.name == "key":
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out
