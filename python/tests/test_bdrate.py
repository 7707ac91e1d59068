"""bd_rate: equal to the PyPI bjontegaard package (1e-6 relative), on arrays, dicts and
results files alike, and to `icm bd-rate`."""

import json
import warnings

import numpy as np
import pytest

import icm
from helpers import REPO, cannot_run, run_cli

REL, ABS = 1e-6, 1e-9
METHODS = ("pchip", "akima", "cubic")


@pytest.fixture(scope="module")
def bjontegaard():
    try:
        import bjontegaard
    except ImportError as e:
        cannot_run(f"the PyPI package bjontegaard is not installed ({e}): scripts/setup_test_env.sh installs it")
    return bjontegaard


def cases():
    """The curve pairs of tests/data/bjontegaard_vectors.json (made by
    make_bjontegaard_vectors.py): regular, irregular, near-copies, partial overlaps, 2-3
    points, no overlap, quality dips."""
    return json.loads((REPO / "tests/data/bjontegaard_vectors.json").read_text())["cases"]


def close(got, want):
    return abs(got - want) <= ABS or abs(got - want) <= REL * abs(want)


def reference(bd, curve_a, curve_t, method):
    """bjontegaard's figures, called as make_bjontegaard_vectors.py calls it (points sorted
    by rate, which it requires)."""
    def sort(c):
        order = np.argsort(c["bpp"])
        return np.asarray(c["bpp"])[order], np.asarray(c["quality"])[order]

    (ra, qa), (rt, qt) = sort(curve_a), sort(curve_t)
    kw = dict(method=method, require_matching_points=False, min_overlap=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bd.bd_rate(ra, qa, rt, qt, **kw)), float(bd.bd_psnr(ra, qa, rt, qt, **kw))


def test_bd_rate_equals_the_bjontegaard_package(bjontegaard):
    """Live bjontegaard on every case whose two figures the vectors define; where they
    record no figure (no overlap: NaN; a quality dip: scipy's ValueError; cubic on fewer
    than 4 points, which VCEG-M33 does not define) icm refuses with BdRateError (it
    computes both figures or neither)."""
    checked = refused = 0
    worst = 0.0
    for case in cases():
        a = (case["anchor"]["bpp"], case["anchor"]["quality"])
        t = (case["test"]["bpp"], case["test"]["quality"])
        for method in METHODS:
            expected = case["expected"][method]
            if expected is None or None in (expected["bd_rate"], expected["bd_metric"]):
                with pytest.raises(icm.BdRateError):
                    icm.bd_rate(a, t, method=method)
                refused += 1
                continue
            want = reference(bjontegaard, case["anchor"], case["test"], method)
            assert close(want[0], expected["bd_rate"]) and close(want[1], expected["bd_metric"])
            got = icm.bd_rate(a, t, method=method)
            for g, w in zip(got, want):
                assert close(g, w), (case["id"], method, got, want)
                if abs(g - w) > ABS:
                    worst = max(worst, abs(g - w) / abs(w))
            checked += 1
    assert checked >= 550 and refused >= 40, (checked, refused)
    print(f"bd_rate: {checked} pairs of figures within {worst:.1e} of bjontegaard, {refused} refused")


@pytest.fixture(scope="module")
def curves():
    a = {"bpp": [0.12, 0.25, 0.5, 1.0], "psnr-rgb": [28.1, 30.9, 33.8, 36.9], "ms-ssim": [0.91, 0.94, 0.965, 0.98]}
    t = {"bpp": [0.1, 0.21, 0.44, 0.93], "psnr-rgb": [28.3, 31.2, 34.0, 37.2], "ms-ssim": [0.915, 0.945, 0.967, 0.982]}
    return a, t


def write_results(path, name, cols):
    path.write_text(json.dumps({"name": name, "description": "", "results": cols}))
    return path


def write_csv(path, cols, metric):
    rows = ["bpp," + metric] + [f"{b},{q}" for b, q in zip(cols["bpp"], cols[metric])]
    path.write_text("\n".join(rows[:1] + rows[:0:-1]) + "\n")  # rows in reverse order
    return path


def test_every_form_of_curve_gives_the_same_figures(curves, tmp_path, cli):
    a, t = curves
    want = icm.bd_rate((a["bpp"], a["psnr-rgb"]), (t["bpp"], t["psnr-rgb"]))
    ja, jt = write_results(tmp_path / "a.json", "a", a), write_results(tmp_path / "t.json", "t", t)
    ca, ct = write_csv(tmp_path / "a.csv", a, "psnr-rgb"), write_csv(tmp_path / "t.csv", t, "psnr-rgb")
    forms = [
        (a, t),
        ({"results": a}, {"results": t}),
        (ja, jt),
        (str(ja), str(jt)),
        (ca, ct),
        (np.array([a["bpp"], a["psnr-rgb"]]), np.array([t["bpp"], t["psnr-rgb"]])),
        ([a["bpp"][::-1], a["psnr-rgb"][::-1]], (np.array(t["bpp"]), np.array(t["psnr-rgb"]))),
    ]
    for fa, ft in forms:
        got = icm.bd_rate(fa, ft)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (type(fa), got, want)
    cli_out = json.loads(run_cli(cli, "bd-rate", "--anchor", ja, "--test", jt, "--json").stdout)
    assert want == pytest.approx((cli_out["bd_rate_percent"], cli_out["bd_metric"]), rel=1e-12)
    for method in METHODS:
        for metric in ("psnr", "ms-ssim"):
            cli_out = json.loads(
                run_cli(cli, "bd-rate", "--anchor", ja, "--test", jt, "--json", "--metric", metric, "--method", method).stdout
            )
            got = icm.bd_rate(ja, jt, metric=metric, method=method)
            assert got == pytest.approx((cli_out["bd_rate_percent"], cli_out["bd_metric"]), rel=1e-12)
            assert icm.bd_rate(a, t, metric=metric, method=method) == got


def test_envelope_drops_dominated_points(curves):
    a, t = curves
    bumpy = {"bpp": a["bpp"] + [0.7], "psnr-rgb": a["psnr-rgb"] + [33.0]}
    with pytest.raises(icm.BdRateError, match="anchor"):
        icm.bd_rate(bumpy, t)
    assert icm.bd_rate(bumpy, t, envelope=True) == icm.bd_rate(a, t)


def test_bad_curves_raise(curves, tmp_path):
    a, t = curves
    with pytest.raises(icm.UsageError, match="method"):
        icm.bd_rate(a, t, method="spline")
    with pytest.raises(icm.UsageError, match="test"):
        icm.bd_rate(a, 3.0)
    with pytest.raises(icm.UsageError, match="no \"map\""):
        icm.bd_rate(a, t, metric="map")
    with pytest.raises(icm.IoError) as e:
        icm.bd_rate(tmp_path / "missing.json", t)
    assert e.value.path.endswith("missing.json")
    with pytest.raises(icm.BdRateError, match="anchor"):
        icm.bd_rate(([0.1, 0.1, 0.2], [30, 31, 32]), t)
    with pytest.raises(icm.BdRateError):
        far = {"bpp": [5.0, 6.0, 7.0, 8.0], "psnr-rgb": [50.0, 51.0, 52.0, 53.0]}
        icm.bd_rate(a, far)
