"""802.11p framing: packets cut into MAC frames at the MSDU limit, PPDU airtime per frame.

A packet of the channel (a request, or ``payload_bytes`` of a response) is carried by one or
more MAC frames. Each frame's MSDU holds the LLC/SNAP header, the security overhead and at most
``msdu_max_bytes - llc_bytes - security_bytes`` payload bytes (IEEE 802.11: MSDU <= 2304 bytes);
its PSDU adds the MAC header and FCS. A frame's airtime is the 802.11p PPDU time of its PSDU
(:func:`radio_models.ieee80211p.ofdm_airtime_s`: 40 us preamble + SIGNAL, 8 us symbols).

Example, 4480 bytes at 6 Mb/s with the defaults (26 + 4 + 8 + 0 = 38 overhead bytes per frame,
2296 payload bytes per frame): fragments of 2296 and 2184 bytes, PSDUs of 2334 and 2222 bytes,
PPDUs of 40 + 8 ceil((22 + 8 x 2334) / 48) = 3160 us and 3008 us: 6168 us in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from radio_models import ieee80211p

__all__ = ["Framing"]


@dataclass(frozen=True)
class Framing:
    """Per-frame overheads and the MSDU limit (bytes)."""

    msdu_max_bytes: int = 2304
    mac_header_bytes: int = 26
    fcs_bytes: int = 4
    llc_bytes: int = 8
    security_bytes: int = 0

    def __post_init__(self):
        if self.max_payload_bytes < 1:
            raise ValueError("msdu_max_bytes must exceed llc_bytes + security_bytes")

    @property
    def max_payload_bytes(self) -> int:
        """Payload bytes one frame can carry."""
        return self.msdu_max_bytes - self.llc_bytes - self.security_bytes

    @property
    def overhead_bytes(self) -> int:
        """Bytes a frame adds to its payload: MAC header + FCS + LLC/SNAP + security."""
        return self.mac_header_bytes + self.fcs_bytes + self.llc_bytes + self.security_bytes

    def fragments(self, payload_bits: int) -> list[int]:
        """Payload bits of each frame of a packet of ``payload_bits`` (one header-only frame
        for 0 bits). Bits are rounded up to whole bytes for the frame, not for accounting."""
        return list(_fragments(int(payload_bits), 8 * self.max_payload_bytes))

    def psdu_bytes(self, frame_payload_bits: int) -> int:
        return -(-int(frame_payload_bits) // 8) + self.overhead_bytes

    def airtime_s(self, frame_payload_bits: int, rate_bps: float) -> float:
        """PPDU airtime of one frame carrying ``frame_payload_bits``."""
        return _airtime(self.psdu_bytes(frame_payload_bits), float(rate_bps))

    def packet_airtime_s(self, payload_bits: int, rate_bps: float) -> float:
        """Sum of the PPDU airtimes of the frames of one packet."""
        return sum(self.airtime_s(b, rate_bps) for b in self.fragments(payload_bits))


@lru_cache(maxsize=4096)
def _fragments(bits: int, max_bits: int) -> tuple[int, ...]:
    full, rest = divmod(bits, max_bits)
    out = (max_bits,) * full + ((rest,) if rest else ())
    return out or (0,)


@lru_cache(maxsize=4096)
def _airtime(psdu_bytes: int, rate_bps: float) -> float:
    return float(ieee80211p.ofdm_airtime_s(psdu_bytes, rate_bps))
