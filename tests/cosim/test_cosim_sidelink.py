"""channel.medium: sidelink in real runs (SUMO, SAC, CommMix): Figure 8, Merge and the highway
run an epoch with policy segments over the sidelink, CAMs by semi-persistent scheduling on Figure
8; bad sidelink parameters stop `cosim validate` with exit 2 naming the key."""

import subprocess
import sys

import pytest

from cosim_testkit import SCENARIOS, run_cosim

SMALL = ("sac.hidden=[32,32]", "sac.batch_size=32", "sac.policy_delay=2", "train.warmup_steps=40", "train.update_every=1",
         "train.eval_every=100", "channel.medium=sidelink")


def _check_comm(row):
    assert int(row["comm_rounds"]) > 0 and int(row["segments_received"]) > 0
    assert int(row["sl_transport_blocks_sent"]) > 0 and int(row["sl_dynamic_selections"]) > 0
    assert float(row["segment_latency_mean_s"]) > 0


def test_figure8_with_sac_and_commmix_over_the_sidelink_and_cams(tmp_path):
    (row,) = run_cosim("figure8.yaml", tmp_path / "f8", *SMALL, "train.epochs=1", "env.horizon=150",
                       "channel.cam.enabled=true", "channel.cam.penetration=1.0")
    _check_comm(row)
    assert int(row["sl_sps_selections"]) == 14 and float(row["cam_pdr"]) > 0.9
    assert int(row["sl_reevaluations"]) > 0  # NR: selected resources checked again before their first SCI


def test_merge_with_sac_and_commmix_over_the_sidelink(tmp_path):
    (row,) = run_cosim("merge.yaml", tmp_path / "merge", *SMALL, "train.epochs=1", "env.horizon=150",
                       "env.warmup_steps=100", "channel.medium_params={technology: lte_mode4, bandwidth_mhz: 10}")
    _check_comm(row)


@pytest.mark.slow
def test_highway_with_sac_and_commmix_over_the_sidelink(tmp_path):
    (row,) = run_cosim("highway.yaml", tmp_path / "hw", *SMALL, "train.epochs=1", "env.horizon=150")
    _check_comm(row)
    assert float(row["mean_active_agents"]) > 50


def test_highway_with_idm_validates_a_medium(tmp_path):
    (row,) = run_cosim("highway.yaml", tmp_path / "idm", "learner=idm", "train.epochs=1", "env.horizon=50",
                       "train.eval_every=100", "channel.medium=sidelink", "channel.cam.enabled=true",
                       "channel.cam.penetration=0.2")
    assert int(row["vehicles_departed"]) >= 295 and int(row["collisions"]) == 0
    assert int(row["mac_cam_frames_sent"]) > 0 and float(row["cam_pdr"]) > 0.5


def test_bad_sidelink_parameters_stop_validate_with_exit_2_naming_the_key():
    out = subprocess.run([sys.executable, "-m", "cosim", "validate", str(SCENARIOS / "figure8.yaml"), "--set",
                          "channel.medium=sidelink", "--set",
                          "channel.medium_params={mcs: 40, p_keep: 2, technology: lte_mode4, subchannel_size_rb: 120}"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    for key in ("mcs", "p_keep", "subchannel_size_rb"):
        assert f"channel.medium_params.{key}: medium 'sidelink'" in out.stderr
