"""Write the plain SUMO sources (nodes, edges, connections, routes) of the two built-in networks.

The geometry rebuilds Flow's ``figure_eight.py`` and ``merge.py`` networks in plain SUMO (numbers
in ``docs/reference.md`` §1). The outputs are committed next to this script; run it again
only to change the geometry:

    python scenarios/networks/generate_flow_networks.py

The ``.net.xml`` files are not committed: ``cosim`` builds them from these sources with
``netconvert`` at run time into a cache (see ``cosim/traffic/network.py``).
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from pathlib import Path

import sumolib

HERE = Path(__file__).resolve().parent

# Vehicle types shared by both scenarios. Humans: Flow's IDM (v0 = 30 via maxSpeed and the
# 30 m/s speed limit, T = 1, a = 1, b = 1.5, delta = 4, s0 = 2); SUMO's default speedDev 0.1
# draws a per-vehicle desired-speed factor from the run seed. CAVs drive the acceleration the
# controller chooses (speed mode set by cosim); their SUMO model only acts before they are
# bound to an agent slot.
VTYPES = """\
    <vType id="human" vClass="passenger" carFollowModel="IDM" accel="1" decel="1.5" tau="1"
           delta="4" minGap="2" length="5" maxSpeed="30" speedDev="0.1" color="white"/>
    <vType id="cav" vClass="passenger" carFollowModel="IDM" accel="3" decel="3" tau="1"
           delta="4" minGap="2" length="5" maxSpeed="30" speedDev="0" color="red"/>
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def _netconvert(prefix: Path, out: Path) -> sumolib.net.Net:
    subprocess.run(
        [sumolib.checkBinary("netconvert"), "--node-files", f"{prefix}.nod.xml",
         "--edge-files", f"{prefix}.edg.xml", "--connection-files", f"{prefix}.con.xml",
         "--no-turnarounds", "true", "--output-file", str(out)],
        check=True, capture_output=True,
    )
    return sumolib.net.readNet(str(out))


# --------------------------------------------------------------------------- Figure 8
R = 30.0  # radius_ring
SPEED = 30.0
LOOP = ["bottom", "top", "upper_ring", "right", "left", "lower_ring"]
# Vehicle order of the authors' code (H = human, R = CAV): 5 humans, 9 CAVs.
FIG8_ORDER = "HRHRRRRHRRRHRH"


def _ring(f, t0: float, t1: float, n: int = 40) -> str:
    pts = [f(t0 + (t1 - t0) * k / (n - 1)) for k in range(n)]
    return " ".join(f"{x:.4f},{y:.4f}" for x, y in pts)


def figure8() -> None:
    out = HERE / "figure8"
    out.mkdir(exist_ok=True)
    _write(out / "figure8.nod.xml", f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Flow figure_eight.py geometry, radius_ring = {R:g} m (docs/reference.md §1). -->
<nodes>
    <node id="center" x="0" y="0" type="priority" radius="3.1"/>
    <node id="right" x="{R:g}" y="0" type="priority"/>
    <node id="top" x="0" y="{R:g}" type="priority"/>
    <node id="left" x="{-R:g}" y="0" type="priority"/>
    <node id="bottom" x="0" y="{-R:g}" type="priority"/>
</nodes>
""")
    upper = _ring(lambda t: (R * (1 - math.cos(t)), R * (1 + math.sin(t))), 0, 1.5 * math.pi)
    lower = _ring(lambda t: (-R + R * math.cos(t), -R + R * math.sin(t)), 0.5 * math.pi, 2 * math.pi)
    _write(out / "figure8.edg.xml", f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Straight edges of length r; ring edges of length 3 pi r / 2 = {1.5 * math.pi * R:.2f} m. -->
<edges>
    <edge id="bottom" from="bottom" to="center" priority="78" numLanes="1" speed="{SPEED:g}"/>
    <edge id="top" from="center" to="top" priority="78" numLanes="1" speed="{SPEED:g}"/>
    <edge id="right" from="right" to="center" priority="46" numLanes="1" speed="{SPEED:g}"/>
    <edge id="left" from="center" to="left" priority="46" numLanes="1" speed="{SPEED:g}"/>
    <edge id="upper_ring" from="top" to="right" numLanes="1" speed="{SPEED:g}" shape="{upper}"/>
    <edge id="lower_ring" from="left" to="bottom" numLanes="1" speed="{SPEED:g}" shape="{lower}"/>
</edges>
""")
    _write(out / "figure8.con.xml", """\
<?xml version="1.0" encoding="UTF-8"?>
<connections>
    <connection from="bottom" to="top"/>
    <connection from="right" to="left"/>
</connections>
""")
    with tempfile.TemporaryDirectory() as tmp:
        net = _netconvert(out / "figure8", Path(tmp) / "figure8.net.xml")
        lengths = {e: net.getEdge(e).getLength() for e in LOOP}
    # Flow's "uniform" initial placement: equal spacing along the normal (non-junction) edges.
    total = sum(lengths.values())
    spacing = total / len(FIG8_ORDER)
    vehicles = []
    for k, role in enumerate(FIG8_ORDER):
        x = k * spacing
        for i, edge in enumerate(LOOP):
            if x < lengths[edge]:
                break
            x -= lengths[edge]
        pos = min(max(x, 5.0), lengths[edge] - 0.1)  # the vehicle (5 m) must fit on its edge
        route = " ".join(LOOP[i:] + LOOP[:i])
        vtype = "cav" if role == "R" else "human"
        vehicles.append(
            f'    <route id="loop_{k}" edges="{route}" repeat="2000"/>\n'
            f'    <vehicle id="{vtype}_{k}" type="{vtype}" route="loop_{k}" depart="0" '
            f'departLane="0" departPos="{pos:.2f}" departSpeed="0"/>\n'
        )
    _write(out / "figure8.rou.xml", f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- 14 vehicles looping (order {FIG8_ORDER}, H = human, R = CAV), evenly spaced
     ({spacing:.2f} m) along the {total:.2f} m of normal edges; `repeat` keeps them looping. -->
<routes>
{VTYPES}{"".join(vehicles)}</routes>
""")


# --------------------------------------------------------------------------- Merge
PRE, POST, MERGE = 500.0, 100.0, 100.0
C45 = math.cos(math.pi / 4)


def merge() -> None:
    out = HERE / "merge"
    out.mkdir(exist_ok=True)
    _write(out / "merge.nod.xml", f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Flow merge.py geometry: pre_merge_length = {PRE:g}, post_merge_length = {POST:g},
     merge_length = {MERGE:g} (docs/reference.md §1). -->
<nodes>
    <node id="inflow_highway" x="-100" y="0" type="priority"/>
    <node id="left" x="0" y="0" type="priority"/>
    <node id="center" x="{PRE:g}" y="0" type="priority" radius="10"/>
    <node id="right" x="{PRE + POST:g}" y="0" type="priority"/>
    <node id="inflow_merge" x="{PRE - 2 * MERGE * C45:.4f}" y="{-2 * MERGE * C45:.4f}" type="priority"/>
    <node id="bottom" x="{PRE - MERGE * C45:.4f}" y="{-MERGE * C45:.4f}" type="priority"/>
</nodes>
""")
    _write(out / "merge.edg.xml", f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- The highway has the higher priority (else netconvert 1.28 makes the ramp the major road). -->
<edges>
    <edge id="inflow_highway" from="inflow_highway" to="left" priority="3" numLanes="1" speed="{SPEED:g}"/>
    <edge id="left" from="left" to="center" priority="3" numLanes="1" speed="{SPEED:g}"/>
    <edge id="center" from="center" to="right" priority="3" numLanes="1" speed="{SPEED:g}"/>
    <edge id="inflow_merge" from="inflow_merge" to="bottom" priority="1" numLanes="1" speed="{SPEED:g}"/>
    <edge id="bottom" from="bottom" to="center" priority="1" numLanes="1" speed="{SPEED:g}"/>
</edges>
""")
    _write(out / "merge.con.xml", """\
<?xml version="1.0" encoding="UTF-8"?>
<connections>
    <connection from="inflow_highway" to="left"/>
    <connection from="left" to="center"/>
    <connection from="inflow_merge" to="bottom"/>
    <connection from="bottom" to="center"/>
</connections>
""")
    _write(out / "merge.rou.xml", f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Paper (Table III): 2200 veh/h on the highway + 100 veh/h on the ramp. Each highway
     vehicle is a CAV with probability 0.3 (drawn by SUMO from its seed), so that about 13 CAVs
     enter during a 75 s epoch; cosim binds CAVs to agent slots as they enter. Inflow speed 10
     m/s and departLane "free" as in Flow's merge.py. -->
<routes>
{VTYPES}    <vTypeDistribution id="highway_mix" vTypes="human cav" probabilities="0.7 0.3"/>
    <route id="highway" edges="inflow_highway left center"/>
    <route id="ramp" edges="inflow_merge bottom center"/>
    <flow id="highway" type="highway_mix" route="highway" begin="0" end="1e9"
          vehsPerHour="2200" departLane="free" departSpeed="10"/>
    <flow id="ramp" type="human" route="ramp" begin="0" end="1e9"
          vehsPerHour="100" departLane="free" departSpeed="10"/>
</routes>
""")


if __name__ == "__main__":
    figure8()
    merge()
