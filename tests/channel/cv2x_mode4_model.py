"""The analytical model of LTE-V2X (C-V2X) mode 4 of Gonzalez-Martin, Sepulcre, Molina-Masegosa
and Gozalvez, "Analytical models of the performance of C-V2X mode 4 vehicular communications",
IEEE Trans. Veh. Technol. 68(2), 1155-1166, 2019, written from the paper's equations (numbers
below are the paper's) with the discretisation of the authors' published evaluation.

Setting: a 1-D highway with vehicles every 1 / beta m, each broadcasting B-byte packets at
lambda Hz with semi-persistent scheduling over S sub-channels of a 10 MHz channel; path loss
WINNER+ B1 LOS with 3 dB log-normal shadowing; a packet below the sensing power threshold
P_sen (-90.5 dBm) is not received; its SNR / SINR decides it through a BLER curve.

The four error types, mutually exclusive and taken in this order (eq. 6):

- half-duplex (eq. 7): delta_HD = lambda / 1000, the receiver transmits in the same subframe;
- below the sensing power (eq. 10): delta_SEN(d) = P(P_t - PL(d) - SH < P_sen);
- propagation (eq. 13): delta_PRO(d) = E[BLER(SNR) | received power >= P_sen];
- collision (eqs. 14-15): delta_COL(d) = 1 - prod_i (1 - p_SIM(i) p_INT(i)) over the interferers
  i at every 1 / beta m within 1 km of the receiver: p_INT (eq. 18) the probability that i's
  interference makes the packet fail, (p_SINR - delta_PRO) / (1 - delta_PRO) with p_SINR
  (eq. 17) = E[BLER(SINR)]; p_SIM the probability that i uses the same resource, from
  step 2 of the selection (eq. 23: exclusion of sensed resources) and step 3 (eq. 31: the
  threshold raised until 20 % of the N resources remain), mixed by the CBR (eqs. 21-22).

PDR(d) = 1 - delta_HD - delta_SEN (1 - delta_HD) - delta_PRO (1 - delta_HD)(1 - delta_SEN)
         - delta_COL (1 - delta_HD)(1 - delta_SEN)(1 - delta_PRO)     (eqs. 6.1-6.5)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from radio_models.sidelink_phy import R1_160284_CURVES
from radio_models.winner_plus_b1 import winner_b1_los_path_loss_db

P_SEN_DBM = -90.5
SHADOWING_DB = 3.0
# the model's setting for 190-byte packets (its "coding" 1 and 2): data RBs and BLER curve
SETTINGS = {4: (10, "r1_160284_qpsk_r0.7"), 2: (12, "r1_160284_qpsk_r0.5")}


def path_loss_db(d) -> np.ndarray:
    """WINNER+ B1 LOS at 5.91 GHz, antennas at 1.5 m, distances below 3 m raised to 3 m."""
    return winner_b1_los_path_loss_db(np.abs(np.asarray(d, dtype=float)), 5.91, 1.5, 1.5, 0.0, 3.0)


def noise_dbm(data_rbs: int) -> float:
    """-95 dBm over the 50 RBs of 10 MHz (NF 9 dB), scaled to the packet's data RBs."""
    return -95.0 - 10.0 * math.log10(50.0 / data_rbs)


def psr(d, pt_dbm: float, p_sen_dbm: float = P_SEN_DBM) -> np.ndarray:
    """Packet sensing ratio (eq. 11): P(P_t - PL(d) - SH >= P_sen)."""
    return 0.5 * (1.0 + erf((pt_dbm - path_loss_db(d) - p_sen_dbm) / (SHADOWING_DB * math.sqrt(2.0))))


def delta_hd(lam: float) -> float:
    """Eq. 7: the probability that the receiver transmits in the packet's subframe."""
    return lam / 1000.0


def delta_sen(d, pt_dbm: float) -> np.ndarray:
    """Eq. 10."""
    return 1.0 - psr(d, pt_dbm)


def _received_grid(mean_dbm: float, step: float = 0.05):
    """Received power values (dBm) and weights of its log-normal law truncated below P_sen."""
    lo = max(P_SEN_DBM, mean_dbm - 8 * SHADOWING_DB)
    hi = max(lo + step, mean_dbm + 8 * SHADOWING_DB)
    x = np.arange(lo, hi + step / 2, step)
    w = np.exp(-0.5 * ((x - mean_dbm) / SHADOWING_DB) ** 2)
    if w.sum() <= 0:
        return x, np.zeros_like(w)
    return x, w / w.sum()


_GH_X, _GH_W = np.polynomial.hermite.hermgauss(48)


def p_error_sinr(signal_mean_dbm: float, interference_mean_dbm, noise: float, curve) -> np.ndarray:
    """E[BLER(SINR)] (eq. 17) for each interference mean (dBm; -inf: none, giving eq. 13): the
    received power log-normal truncated at P_sen, the interference log-normal."""
    x, w = _received_grid(signal_mean_dbm)
    if not w.any():
        return np.ones(np.shape(interference_mean_dbm))
    im = np.atleast_1d(np.asarray(interference_mean_dbm, dtype=float))
    n_mw = 10.0 ** (noise / 10.0)
    out = np.empty(im.shape[0])
    for k, mu in enumerate(im):
        if np.isneginf(mu):
            in_db = np.array([noise])
            iw = np.array([1.0])
        else:
            i_db = mu + math.sqrt(2.0) * SHADOWING_DB * _GH_X
            in_db = 10.0 * np.log10(10.0 ** (i_db / 10.0) + n_mw)
            iw = _GH_W / math.sqrt(math.pi)
        sinr = x[:, None] - in_db[None, :]
        out[k] = float(w @ curve.bler(sinr) @ iw)
    return out


def _excluded(spsr: float, n: float) -> float:
    """Eq. 29 (and 33): resources excluded when S_PSR vehicles are sensed."""
    half = spsr / 2.0
    k = np.arange(1, int(math.floor(half)) + 1)
    return half + float(np.maximum(1.0 - k / (n - half), 0.0).sum())


def common_excluded(r_psr: np.ndarray, r0: float, beta: float, ne: float, spsr: float, n: float) -> np.ndarray:
    """Eq. 30: resources excluded by both of two vehicles, by their distance (the lag of the
    PSR autocorrelation r_psr; r0 its value at lag 0)."""
    return (r_psr / r0) * (beta * ne * r0 / spsr - ne * ne / n) + ne * ne / n


def common_candidates(r_psr: np.ndarray, r0: float, beta: float, ne: float, spsr: float, n: float) -> np.ndarray:
    """Eqs. 26-27: candidate resources two vehicles share, by their distance."""
    ca = n - 2 * ne + common_excluded(r_psr, r0, beta, ne, spsr, n)  # eq. 27
    return ca * (0.2 * n / (n - ne)) ** 2  # eq. 26: N_c = 0.2 N, N_a = N - N_e


D_AUX = np.arange(-1500, 1501)  # the discretisation of eqs. 29-32 (1 m, 1.5 km either side)


def _step2(beta: float, pt_dbm: float, n_res: float) -> tuple[float, float, np.ndarray]:
    """Step 2's sensed vehicles S_PSR (eq. 29.1), excluded resources N_e (eq. 29) and the PSR
    autocorrelation by lag in m (eq. 30.2, lags 0..3000)."""
    psr_aux = psr(D_AUX, pt_dbm)
    spsr = beta * psr_aux.sum()
    r_psr = np.correlate(psr_aux, psr_aux, mode="full")[len(D_AUX) - 1:]
    return spsr, _excluded(spsr, n_res), r_psr


def _p_sim(d, pt_dbm: float, lam: float, cc: np.ndarray, n_c: float, p_sen: float = P_SEN_DBM) -> np.ndarray:
    """Eqs. 23-24 (31 at step 3's threshold ``p_sen``): the probability that two vehicles ``d``
    m apart use the same resource, from their common candidates ``cc`` by lag."""
    d = np.asarray(d, dtype=float)
    lag = np.minimum(np.round(np.abs(d)).astype(int), cc.shape[0] - 1)
    return (1.0 - (1.0 - 1.0 / lam) * psr(d, pt_dbm, p_sen)) * cc[lag] / (n_c * n_c)


def pair_reuse(beta: float, pt_dbm: float, sub_channels: int, distances, lam: float = 10.0) -> np.ndarray:
    """p_SIM of step 2 (eqs. 23-30): the probability that two vehicles ``distances`` m apart
    hold the same resource, before the factor of interference of eq. 15."""
    n_res = sub_channels * 1000.0 / lam
    spsr, ne2, r_psr = _step2(beta, pt_dbm, n_res)
    cc2 = common_candidates(r_psr, r_psr[0], beta, ne2, spsr, n_res)
    return _p_sim(distances, pt_dbm, lam, cc2, 0.2 * n_res)


def model(beta: float, lam: float, pt_dbm: float, sub_channels: int, distances,
          alpha: float | None = None) -> dict[str, np.ndarray]:
    """PDR and the four error probabilities at each distance (m), and the CBR (eq. 34).

    ``alpha``: the weight of step 2 against step 3 in the collision term (eq. 21); ``None``
    takes it from the CBR as the paper does (eq. 22), a number forces it (0: step 3 alone)."""
    rbs, curve_name = SETTINGS[sub_channels]
    curve = R1_160284_CURVES[curve_name]
    noise = noise_dbm(rbs)
    d = np.asarray(distances, dtype=float)
    hd = np.full(d.shape, delta_hd(lam))
    sen = delta_sen(d, pt_dbm)
    pro = np.array([p_error_sinr(pt_dbm - path_loss_db(di), -np.inf, noise, curve)[0] for di in d])

    n_res = sub_channels * 1000.0 / lam  # eq. 28: resources in the selection window
    n_c = 0.2 * n_res
    spsr, ne2, r_psr = _step2(beta, pt_dbm, n_res)
    cbr = ne2 / n_res  # eq. 34
    r0 = r_psr[0]

    # step 3: the threshold raised (0.1 dB steps) until N_a >= N_c (eqs. 32, 33)
    p_sen3 = P_SEN_DBM
    while True:
        spsr_n = 2.0 * beta * psr(D_AUX, pt_dbm, p_sen3).sum()  # eq. 32.1
        ne3 = _excluded(spsr_n, n_res)
        na3 = n_res - ne3
        if na3 >= n_c:
            break
        p_sen3 += 0.1
    cc2 = common_candidates(r_psr, r0, beta, ne2, spsr, n_res)
    cc3 = common_candidates(r_psr, r0, beta, ne3, spsr, n_res)

    k_max = round(1000 * beta)
    d_ir = np.arange(-k_max, k_max + 1) / beta
    d_ir = d_ir[np.abs(d_ir) > 1e-6]  # interferers' signed distances to the receiver
    col2 = np.zeros(d.shape)
    col3 = np.zeros(d.shape)
    for idx, di in enumerate(d):
        if pro[idx] >= 1.0:
            continue
        d_it = d_ir + di  # to the transmitter
        p_sinr = p_error_sinr(pt_dbm - path_loss_db(di), pt_dbm - path_loss_db(d_ir), noise, curve)
        p_int = (p_sinr - pro[idx]) / (1.0 - pro[idx])  # eq. 18
        col2[idx] = 1.0 - np.prod(1.0 - _p_sim(d_it, pt_dbm, lam, cc2, n_c) * p_int)  # eqs. 23, 15, 14
        col3[idx] = 1.0 - np.prod(1.0 - _p_sim(d_it, pt_dbm, lam, cc3, n_c, p_sen3) * p_int)  # eqs. 31, 15, 14
    if alpha is None:
        alpha = 0.0 if cbr < 0.2 else (2 * cbr - 0.4 if cbr <= 0.7 else 1.0)  # eq. 22
    if alpha >= 1.0:
        col3[:] = 0.0
    # eqs. 6.1-6.5 and 21
    out_hd = hd
    out_sen = sen * (1 - hd)
    out_pro = pro * (1 - hd) * (1 - sen)
    out_col = (alpha * col2 + (1 - alpha) * col3) * (1 - hd) * (1 - sen) * (1 - pro)
    return {
        "pdr": 1 - out_hd - out_sen - out_pro - out_col,
        "hd": out_hd,
        "sen": out_sen,
        "pro": out_pro,
        "col": out_col,
        "cbr": cbr,
        "alpha": alpha,
        "p_sen_step3": p_sen3,
    }
