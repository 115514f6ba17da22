"""Write the plain SUMO sources of the highway scenario: the freeway of 3GPP TR 37.885 §6.1.2
(3 lanes per direction, 4 m lanes, wrap-around) as a ring.

TR 37.885 evaluates V2X on a freeway of at least 2000 m with wrap-around, 3 lanes in each
direction and 4 m lanes. Here the wrap-around is geometric: the carriageways are two concentric
loops of ``--length`` metres (default 3000 m, radius 477 m), one per direction, so no vehicle
ever meets a road end and every vehicle has neighbours on both sides. Within 300 m the radio
distance (a chord) is at most 1.7 % shorter than the distance along the road at 3000 m.

Traffic: ``--vehicles`` vehicles (default 300; 100 to 1000 fit at 70 km/h) placed evenly over
the 6 lanes, every one on a looping route. Vehicle types are those of the built-in scenarios
(IDM humans: a = 1, b = 1.5, T = 1 s, s0 = 2 m), with the speed limit of ``--speed-kmh``
(TR 37.885: 70 or 140 km/h; default 70). A share ``--cav-share`` (default 0.2) of them, spread
evenly along each lane, are CAVs (vType ``cav``) that cosim binds to agent slots.

    python scenarios/networks/highway/generate_highway.py                # the committed sources
    python scenarios/networks/highway/generate_highway.py --vehicles 1000 --out /tmp/hw1000

The ``.net.xml`` is not committed: cosim builds it with netconvert at run time into its cache.
Route files for other fleet sizes can be written elsewhere (``--out``) and named in
``network.routes``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent

LANES = 3
LANE_WIDTH_M = 4.0
SEGMENTS = 12  # arcs per carriageway (nodes on the ring)
POINTS_PER_ARC = 24


def vtypes(speed: float) -> str:
    """IDM humans and CAVs as in the built-in scenarios, with this scenario's speed limit."""
    return f"""\
    <vType id="human" vClass="passenger" carFollowModel="IDM" accel="1" decel="1.5" tau="1"
           delta="4" minGap="2" length="5" maxSpeed="{speed:.2f}" speedDev="0.1" color="white"/>
    <vType id="cav" vClass="passenger" carFollowModel="IDM" accel="3" decel="3" tau="1"
           delta="4" minGap="2" length="5" maxSpeed="{speed:.2f}" speedDev="0" color="red"/>
"""


def write(out: Path, length: float, vehicles: int, cav_share: float, speed_kmh: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    radius = length / (2.0 * math.pi)
    speed = speed_kmh / 3.6
    min_gap_m = 5.0 + 2.0  # vehicle length + IDM minimum gap
    per_lane = math.ceil(vehicles / (2 * LANES))
    if length / per_lane < min_gap_m + 0.5:
        raise SystemExit(f"{vehicles} vehicles do not fit on 6 lanes of {length:g} m (at most {int(6 * length / 7.5)})")

    def point(angle: float) -> tuple[float, float]:
        return radius * math.cos(angle), radius * math.sin(angle)

    nodes = [point(2 * math.pi * k / SEGMENTS) for k in range(SEGMENTS)]
    node_xml = "\n".join(f'    <node id="n{k}" x="{x:.3f}" y="{y:.3f}" type="priority"/>' for k, (x, y) in enumerate(nodes))
    edges, cons = [], []
    for k in range(SEGMENTS):
        a0, a1 = 2 * math.pi * k / SEGMENTS, 2 * math.pi * (k + 1) / SEGMENTS
        arc = [point(a0 + (a1 - a0) * j / (POINTS_PER_ARC - 1)) for j in range(POINTS_PER_ARC)]
        shape = " ".join(f"{x:.3f},{y:.3f}" for x, y in arc)
        back = " ".join(f"{x:.3f},{y:.3f}" for x, y in reversed(arc))
        nxt = (k + 1) % SEGMENTS
        edges.append(f'    <edge id="ccw{k}" from="n{k}" to="n{nxt}" numLanes="{LANES}" width="{LANE_WIDTH_M:g}" '
                     f'speed="{speed:.2f}" shape="{shape}"/>')
        edges.append(f'    <edge id="cw{k}" from="n{nxt}" to="n{k}" numLanes="{LANES}" width="{LANE_WIDTH_M:g}" '
                     f'speed="{speed:.2f}" shape="{back}"/>')
        prev = (k - 1) % SEGMENTS
        for lane in range(LANES):
            cons.append(f'    <connection from="ccw{k}" to="ccw{nxt}" fromLane="{lane}" toLane="{lane}"/>')
            cons.append(f'    <connection from="cw{k}" to="cw{prev}" fromLane="{lane}" toLane="{lane}"/>')
    arc_len = length / SEGMENTS
    head = f"3GPP TR 37.885 freeway as a ring: {length:g} m per carriageway (radius {radius:.1f} m), {LANES} lanes of " \
           f"{LANE_WIDTH_M:g} m per direction, {speed_kmh:g} km/h."
    (out / "highway.nod.xml").write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {head} -->\n<nodes>\n{node_xml}\n</nodes>\n')
    (out / "highway.edg.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {head} ccw: counter-clockwise carriageway, cw: clockwise. -->\n'
        f'<edges>\n' + "\n".join(edges) + "\n</edges>\n")
    (out / "highway.con.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- Straight on, lane by lane; no turnarounds. -->\n'
        '<connections>\n' + "\n".join(cons) + "\n</connections>\n")

    loops = {"ccw": [f"ccw{k}" for k in range(SEGMENTS)], "cw": [f"cw{k}" for k in reversed(range(SEGMENTS))]}
    routes, cars = [], []
    for d, loop in loops.items():
        for i in range(SEGMENTS):
            routes.append(f'    <route id="{d}_{i}" edges="{" ".join(loop[i:] + loop[:i])}" repeat="1000"/>')
    # even placement: lane l of direction d holds per_lane vehicles spaced length / per_lane, the
    # lanes staggered; CAVs every round(1 / share)-th along each lane (Bresenham, exact share)
    spacing = length / per_lane
    count = 0
    slots = []
    for d in ("ccw", "cw"):
        for lane in range(LANES):
            for j in range(per_lane):
                slots.append((d, lane, (j + lane / LANES) * spacing))
    slots = slots[:vehicles]
    for idx, (d, lane, s) in enumerate(slots):
        seg = min(int(s // arc_len), SEGMENTS - 1)
        pos = min(max(s - seg * arc_len, 5.0), arc_len - 1.0)
        cav = math.floor((idx + 1) * cav_share) > math.floor(idx * cav_share)
        vtype = "cav" if cav else "human"
        cars.append((0, f'    <vehicle id="{vtype}_{idx}" type="{vtype}" route="{d}_{seg}" depart="0" '
                        f'departLane="{lane}" departPos="{pos:.2f}" departSpeed="max"/>'))
        count += cav
    (out / "highway.rou.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {head} {vehicles} vehicles, {count} CAVs '
        f'(share {cav_share:g}), {per_lane} per lane, {spacing:.1f} m apart, looping (`repeat`). -->\n<routes>\n'
        + vtypes(speed) + "\n".join(routes) + "\n" + "\n".join(c for _, c in cars) + "\n</routes>\n")
    print(f"wrote {out}/highway.{{nod,edg,con,rou}}.xml: {vehicles} vehicles, {count} CAVs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--length", type=float, default=3000.0, help="metres per carriageway (>= 2000 per TR 37.885)")
    ap.add_argument("--vehicles", type=int, default=300, help="vehicles on both carriageways (100-1000)")
    ap.add_argument("--cav-share", type=float, default=0.2, help="share of CAVs (0-1)")
    ap.add_argument("--speed-kmh", type=float, default=70.0, help="speed limit (TR 37.885: 70 or 140)")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: next to this script)")
    a = ap.parse_args()
    if not 0.0 <= a.cav_share <= 1.0 or a.vehicles < 1 or a.length <= 0:
        raise SystemExit("need --vehicles >= 1, --length > 0 and --cav-share in [0, 1]")
    write(a.out, a.length, a.vehicles, a.cav_share, a.speed_kmh)


if __name__ == "__main__":
    main()
