import pytest

from results import judged, minimal

from ktest.base.result import Expectation
from ktest.judge.verdict import compare_checks, expected_effects, overall, side_status, splat_diff, transition


def run(results, splats=()):
    return {"results": results, "splats": list(splats)}


def res(path, status="PASS", samples=None, unit="ms"):
    m = [{"name": "lat", "unit": unit, "samples": samples, "n": len(samples)}] if samples else []
    return {"path": path, "status": status, "metrics": m, "timelines": [], "notes": {}, "message": None}


def test_side_status():
    assert side_status(["PASS", "PASS"]) == "PASS"
    assert side_status(["PASS", "FAIL"]) == "FLAKY"
    assert side_status([]) == "MISS"
    assert side_status(["SKIP", "SKIP"]) == "SKIP"


def test_transitions():
    assert transition("PASS", "FAIL") == "regression"
    assert transition("FAIL", "PASS") == "fixed"
    assert transition("PASS", "FLAKY") == "flaky"
    assert transition("PASS", "MISS") == "regression"
    assert transition("PASS", "PASS") == transition("SKIP", "SKIP") == "unchanged"


def test_a_check_that_asserted_on_one_side_only_is_not_compared():
    """A check the patched kernel skips (its probe no longer finds the feature, say) proved nothing
    there: not "unchanged".  Nor is one that fails where the base skipped or never ran it."""
    for base, patched in (("PASS", "SKIP"), ("FAIL", "SKIP"), ("SKIP", "PASS"), ("SKIP", "FAIL"), ("MISS", "FAIL")):
        assert transition(base, patched) == "not compared", (base, patched)
    base = [run([res("a"), res("b")])]
    patched = [run([res("a"), res("b", "SKIP")])]
    checks = compare_checks(base, patched)
    assert [c["verdict"] for c in checks] == ["unchanged", "not compared"]
    v = overall(checks, {"new": []})
    assert (v.status, v.not_compared, v.regressions) == ("no regression", ["b"], [])


def test_status_regression_and_fix_across_rounds():
    """Failing in every patched boot and passing in every base boot: 2 boots a side cannot tell that
    from a check that fails half the time on both (Fisher p = 1/6): undecided, exit 3, never green.
    Three boots a side decide it (p = 1/20: an exact test rejects at p <= 5 %), four with p = 1/70."""
    base = [run([res("a"), res("b", "FAIL")]) for _ in range(2)]
    patched = [run([res("a", "FAIL"), res("b")]) for _ in range(2)]
    checks = {c["path"]: c for c in compare_checks(base, patched)}
    assert checks["a"]["verdict"] == "undecided" and checks["a"]["failures"]["decision"] == "UNKNOWN"
    v = overall(list(checks.values()), {"new": []})
    assert (v.status, v.exit_code) == ("undecided", 3) and v.undecided[0].startswith("a: fails in 2 of 2")
    (three,) = [c for c in compare_checks(base + base[:1], patched + patched[:1]) if c["path"] == "a"]
    assert three["verdict"] == "regression" and three["failures"]["p"] == pytest.approx(1 / 20)
    checks = {c["path"]: c for c in compare_checks(base * 2, patched * 2)}
    assert checks["a"]["verdict"] == "regression" and checks["a"]["patched"]["statuses"] == ["FAIL"] * 4
    assert checks["a"]["failures"]["p"] == pytest.approx(1 / 70)
    assert checks["b"]["verdict"] == "fixed"
    v = overall(list(checks.values()), {"new": []})
    assert v.exit_code == 1 and v.regressions == ["a"] and v.improvements == ["b"]


def test_a_check_failing_in_one_of_two_patched_boots_with_a_clean_base_is_never_green():
    """It buys more boots; if the failure keeps coming it is a regression, if the new boots pass it is
    flaky (a rise of 50 points in the failure rate would have shown with power 0.8), and in between it
    stays undecided."""
    ok, bad = run([res("a")]), run([res("a", "FAIL")])
    (c,) = compare_checks([ok, ok], [bad, ok])
    assert c["verdict"] == "undecided"
    assert overall([c], {"new": []}).exit_code == 3
    (c,) = compare_checks([ok] * 6, [bad] + [ok] * 5)
    assert c["verdict"] == "flaky" and c["failures"]["decision"] == "SAME"
    assert overall([c], {"new": []}).exit_code == 0
    (c,) = compare_checks([ok] * 8, [bad, ok] * 4)
    assert c["verdict"] == "regression" and c["failures"]["p"] < 0.05
    (c,) = compare_checks([ok] * 3, [bad, ok, ok])
    assert c["verdict"] == "undecided", "1 of 3 against 0 of 3 is not yet evidence either way"


def test_a_check_known_to_flake_on_the_base_is_not_a_patched_only_failure():
    """The base kernel's failure rate from the history counts with the base's own boots."""
    ok, bad = run([res("a")]), run([res("a", "FAIL")])
    (c,) = compare_checks([ok] * 2, [bad, ok], fail_history={"a": (8, 20)})
    assert c["verdict"] == "flaky" and c["failures"]["history"] == [8, 20]
    (c,) = compare_checks([ok] * 2, [bad, bad], fail_history={"a": (0, 20)})
    assert c["verdict"] == "regression", "a clean history makes two failures in two boots evidence"


def test_failure_counts_are_corrected_over_the_checks_whose_failures_were_tested():
    """A run of a harmless series with flaky upstream cases: one of them happens to fail in 4 of 8 patched
    boots and no base boot (Fisher p = 0.038).  Alone that is a regression; beside another check that
    failed more often on the patched side it is one of two tests (q = 0.077), undecided.  A check
    failing in every patched boot stays a regression among them."""
    def boots(fails: dict[str, list[bool]], n: int):
        return [run([res(path, "FAIL" if f[i] else "PASS") for path, f in fails.items()]) for i in range(n)]

    alone = compare_checks(boots({"a": [False] * 8}, 8), boots({"a": [True, False] * 4}, 8))
    assert alone[0]["verdict"] == "regression" and alone[0]["failures"]["q"] == pytest.approx(0.038, abs=1e-3)
    base = boots({"a": [False] * 8, "b": [True, False, False, False] * 2, "c": [False, True] * 4}, 8)
    patched = boots({"a": [True, False] * 4, "b": [False, True, True, False] * 2, "c": [True, True, False, False] * 2}, 8)
    by = {c["path"]: c for c in compare_checks(base, patched)}
    fa = by["a"]["failures"]
    assert fa["p"] < 0.05 and fa["q"] > 0.05 and by["a"]["verdict"] == "undecided", fa
    assert "over the 2 checks whose failures were tested" in fa["why"], "c fails as often on both sides: not tested"
    assert overall(list(by.values()), {"new": []}).exit_code == 3, "in doubt: never green, not red"
    base = boots({"a": [False] * 5, "b": [True, False, False, False, False], "c": [False, True, False, False, True]}, 5)
    patched = boots({"a": [True] * 5, "b": [False, True, True, False, False], "c": [True, True, False, False, True]}, 5)
    by = {c["path"]: c for c in compare_checks(base, patched)}
    assert by["a"]["verdict"] == "regression" and by["a"]["failures"]["q"] < 0.05


def test_a_check_failing_in_most_base_boots_settles_instead_of_retrying_to_the_limit():
    """Recorded counts (bond_options.sh prio's `arp_ip_target primary_reselect 2`, a run of
    patches/bonding at abc9473): 1 of 1 patched against 0 of 1 base, then 3 of 3 against 2 of 3, then 5
    of 5 against 4 of 5.  A rise of 50 points over a base failing 4 boots in 5 cannot be: flaky at 5, not
    retried to 8 boots a side (the rule before asked for power against min(1, 0.8 + 0.5), never reached)."""
    ok, bad = run([res("a")]), run([res("a", "FAIL")])
    (c,) = compare_checks([ok], [bad])
    assert c["verdict"] == "undecided"
    (c,) = compare_checks([ok, bad, bad], [bad] * 3)
    assert c["verdict"] == "undecided", "2 of 3 on the base leaves a rise from a third to all possible"
    (c,) = compare_checks([ok] + [bad] * 4, [bad] * 5)
    assert c["verdict"] == "flaky" and c["failures"]["decision"] == "SAME"
    assert overall([c], {"new": []}).exit_code == 0


def test_ruling_out_a_rise_errs_at_most_1_minus_power_at_every_base_rate():
    """The non-inferiority test behind "no difference": whatever the base's failure rate rb, when the
    patch raises it to rb + FAIL_EFFECT, outcomes that rule the rise out have probability at most
    1 - POWER.  Exact, over every outcome of n patched and n (or n + 10: the history) base boots."""
    from scipy.stats import binom

    from ktest.judge.stats import POWER
    from ktest.judge.verdict import FAIL_EFFECT, rise_ruled_out_p

    for n in range(1, 9):
        for n_b in (n, n + 10):
            for rb in [i / 20 * (1 - FAIL_EFFECT) for i in range(21)]:
                wrong = sum(binom.pmf(kb, n_b, rb) * binom.pmf(kp, n, rb + FAIL_EFFECT)
                            for kb in range(n_b + 1) for kp in range(n + 1)
                            if rise_ruled_out_p(kb, n_b, kp, n) <= 1 - POWER)
                assert wrong <= 1 - POWER, (n, n_b, rb, wrong)
    assert rise_ruled_out_p(0, 8, 1, 8) < 0.05, "1 of 8 against 0 of 8 rules a rise of 50 points out"
    assert rise_ruled_out_p(0, 2, 1, 2) > 0.5, "1 of 2 against 0 of 2 does not"


def test_failures_on_both_sides_at_the_same_rate_are_flaky():
    ok, bad = run([res("a")]), run([res("a", "FAIL")])
    (c,) = compare_checks([bad, ok, ok, ok], [ok, bad, ok, ok])
    assert c["verdict"] == "flaky" and overall([c], {"new": []}).exit_code == 0


def test_a_metric_in_doubt_is_never_no_regression():
    """31 -> 113 ms at 2 boots a side, among a run's other metrics: in doubt, so the run is undecided."""
    others = [res(f"o{i}", samples=[10.0, 11, 12]) for i in range(12)]
    base = [run([res("lw", samples=[22, 25, 27, 31, 35])] + others), run([res("lw", samples=[30, 33, 37, 40, 44])] + others)]
    patched = [run([res("lw", samples=[80, 95, 100, 104, 110])] + others),
               run([res("lw", samples=[112, 120, 126, 131, 150])] + others)]
    checks = compare_checks(base, patched)
    m = checks[0]["metrics"][0]
    assert m["verdict"] == "inconclusive" and m["doubt"] == "harm"
    v = overall(checks, {"new": []})
    assert (v.status, v.exit_code) == ("undecided", 3) and v.undecided[0].startswith("lw/lat: median")
    # a declared "no change" on it is not decided either, and says so rather than "not measured"
    (e, gone) = [Expectation.from_json(e) for e in expected_effects(
        {"metrics": [{"check": "lw", "metric": "lat", "change": "none"},
                     {"check": "zz", "metric": "lat", "change": "none"}]}, checks)]
    assert (e.held, e.word, gone.held, gone.word) == (None, "undecided", None, "not measured")
    assert "not decided" in (e.observed or "")


def test_metric_samples_pool_across_rounds_and_improve():
    base = [run([res("lw", samples=[900, 905, 899])]), run([res("lw", samples=[902, 898, 901])])]
    patched = [run([res("lw", samples=[3, 4, 3])]), run([res("lw", samples=[4, 3, 5])])]
    (c,) = compare_checks(base, patched)
    (m,) = c["metrics"]
    assert m["n_base"] == 6 and m["n_patched"] == 6 and m["verdict"] == "improved"
    assert c["verdict"] == "metric improvement"
    exp = expected_effects({"metrics": [{"check": "lw", "metric": "lat", "change": "decrease"},
                                        {"check": "lw", "metric": "lat", "change": "none"},
                                        {"check": "zz", "metric": "lat", "change": "decrease"}]}, [c])
    assert [e["held"] for e in exp] == [True, False, None]


def test_new_splat_in_patched_is_a_regression_even_when_checks_pass():
    warn = {"kind": "warning", "fingerprint": "warning:foo/bar", "title": "WARNING: ..."}
    known = {"kind": "warning", "fingerprint": "warning:known", "title": "...", "known": "tracked"}
    old = {"kind": "warning", "fingerprint": "warning:old", "title": "..."}
    d = splat_diff([run([res("a")], [old])], [run([res("a")], [old, warn, known])])
    assert [s["fingerprint"] for s in d["new"]] == ["warning:foo/bar"]
    checks = compare_checks([run([res("a")])], [run([res("a")])])
    v = overall(checks, d)
    assert v.exit_code == 1 and v.regressions == ["new warning: warning:foo/bar"]


def test_expected_status_transition():
    base = [run([res("a", "FAIL")])]
    patched = [run([res("a", "PASS")])]
    checks = compare_checks(base, patched)
    (e,) = expected_effects({"checks": [{"check": "a", "transition": "fixed"}]}, checks)
    assert e["held"] is True and e["metric"] == "status" and "FAIL -> PASS" in e["observed"]
    (e,) = expected_effects({"checks": [{"check": "a", "transition": "fixed"}]}, compare_checks(base, base))
    assert e["held"] is False


def test_numbers_left_by_a_skipped_check_are_not_compared():
    """Found on 6.1: the bounce skipped after measuring, and its leftover samples made a 'metric improvement'
    and decided a declared expectation."""
    base = [run([res("a", "SKIP", [900.0, 910, 905, 899, 902])])]
    patched = [run([res("a", "SKIP", [2.0, 3, 2, 2, 1])])]
    (c,) = compare_checks(base, patched)
    assert c["verdict"] == "unchanged" and c["metrics"][0]["verdict"] == "inconclusive"
    assert "skipped on base and patched" in c["metrics"][0]["reason"]
    (e,) = expected_effects({"metrics": [{"check": "a", "metric": "lat", "change": "decrease"}]}, [c])
    assert e["held"] is None and "skipped" in e["observed"] and Expectation.from_json(e).word == "not measured"
    assert overall([c], {"new": []}).improvements == []


def test_a_context_metric_is_shown_but_never_a_verdict():
    """Found on 6.1: the harness's bind-to-up time (11 -> 23 ms, p 0.03) made a run a 'regression'."""
    def ctx(status, samples):
        r = res("a", status, samples)
        r["metrics"][0]["context"] = True
        return r
    (c,) = compare_checks([run([ctx("PASS", [10.0, 11, 11, 12, 13, 16])])], [run([ctx("PASS", [19.0, 26, 33, 39, 48, 81])])])
    assert c["metrics"][0]["verdict"] == "context" and c["verdict"] == "unchanged"
    assert c["metrics"][0]["patched_samples"] == [19.0, 26, 33, 39, 48, 81], "still shown"
    assert overall([c], {"new": []}).regressions == []


def test_a_failing_check_that_gets_worse_is_a_regression():
    """6.12: the base already fails the peer-notification check (2 of 3 gratuitous ARPs); a patch that
    sends 1 in 6/6 samples was 'still failing' and went unreported."""
    base = [run([res("pn", "FAIL", [2, 2, 2], "count")]), run([res("pn", "FAIL", [2, 2, 2], "count")])]
    patched = [run([res("pn", "FAIL", [1, 1, 1], "count")]), run([res("pn", "FAIL", [1, 1, 1], "count")])]
    for r in base + patched:
        r["results"][0]["metrics"][0]["lower_is_better"] = False
    (c,) = compare_checks(base, patched)
    assert c["transition"] == "still failing" and c["verdict"] == "still failing, worse"
    v = overall([c], {"new": []})
    assert v.exit_code == 1 and v.regressions == ["pn"]
    (c,) = compare_checks(patched, base)
    assert c["verdict"] == "still failing, better" and overall([c], {"new": []}).improvements == ["pn"]


def test_a_run_without_evidence_is_never_no_regression():
    """--rounds 0, or every check skipped: nothing asserted on both sides."""
    v = overall(compare_checks([], []), {"new": []})
    assert v.status == "could not run" and v.exit_code == 2
    v = overall(compare_checks([run([res("a", "SKIP")])], [run([res("a", "SKIP")])]), {"new": []})
    assert v.exit_code == 2
    assert overall(compare_checks([run([res("a")])], [run([res("a")])]), {"new": []}).exit_code == 0


def test_calibrated_floor_is_looked_up_per_check_and_metric():
    base = [run([res("lw", samples=x)]) for x in ([2.9, 3.1, 3.3, 3.4, 3.4], [3.5, 3.6, 4.0, 4.4, 5.1],
                                                  [3.0, 3.2, 3.5, 3.6, 4.0])]
    patched = [run([res("lw", samples=x)]) for x in ([6.8, 8.0, 8.9, 9.2, 9.4], [9.6, 10.1, 11, 12.5, 15.3],
                                                     [8.0, 8.5, 9.0, 9.5, 10.0])]
    assert compare_checks(base, patched)[0]["verdict"] == "metric regression"
    (c,) = compare_checks(base, patched, calibration={"lw/lat": {"centre": 12.0, "tail": 14.0}})
    assert c["verdict"] == "unchanged" and c["metrics"][0]["floor_source"] == "calibrated"


def test_a_known_base_failure_is_named_and_still_compared():
    result = minimal(known_checks=[{"check": "bonding.*.peer_notification", "reason": "6.12 loses one"}])
    base = [run([res("bonding.active_backup.peer_notification", "FAIL", [2, 2, 2], "count"), res("other", "FAIL")])]
    patched = [run([res("bonding.active_backup.peer_notification", "FAIL", [2, 2, 2], "count"), res("other", "FAIL")])]
    result = judged(result, base, patched)
    by = {c["path"]: c for c in result["checks"]}
    assert by["bonding.active_backup.peer_notification"]["known_issue"] == "6.12 loses one"
    assert "known_issue" not in by["other"]
    assert by["bonding.active_backup.peer_notification"]["verdict"] == "still failing"


def test_a_stall_in_one_patched_boot_is_retried_not_a_regression_and_two_are():
    """From a real no-op run under a loaded TCG host: an RCU stall (rcu_gp_fqs_loop) in one patched boot
    of two.  Not reproduced: listed as flaky.  Seen in a second patched boot: a regression.  An Oops or a
    WARNING in one boot stays a regression: starvation does not print those."""
    stall = {"kind": "rcu_stall", "fingerprint": "rcu_stall:stop_machine_yield/schedule_timeout/rcu_gp_fqs_loop",
             "title": "rcu: INFO: rcu_preempt detected stalls"}
    warn = {"kind": "warning", "fingerprint": "warning:foo/bar", "title": "WARNING: ..."}
    base = [run([res("a")]) for _ in range(3)]
    checks = compare_checks(base, base)
    once = splat_diff(base, [run([res("a")], [stall]), run([res("a")]), run([res("a")])])
    assert once["new"][0]["boots"] == 1 and once["new"][0]["of"] == 3
    v = overall(checks, once)
    assert v.exit_code == 0 and v.regressions == []
    assert v.flaky == [f"rcu_stall: {stall['fingerprint']} (1 of 3 patched boots, not reproduced)"]
    twice = splat_diff(base, [run([res("a")], [stall]), run([res("a")]), run([res("a")], [stall])])
    assert overall(checks, twice).regressions == [f"new rcu_stall: {stall['fingerprint']}"]
    warned = splat_diff(base, [run([res("a")], [warn]), run([res("a")]), run([res("a")])])
    assert overall(checks, warned).exit_code == 1


def test_the_smoke_checks_alone_are_no_evidence_about_the_series():
    """A linkwatch series whose every linkwatch check skipped on both sides (a kernel without the
    option they need, say), beside smoke checks that passed: could not run, not "no regression".  A run
    of the smoke checks alone (-k) is judged on them; so is a run of one's own checks."""
    base = patched = [run([res("smoke.guest_basics"), res("linkwatch.operstate.dummy_carrier", "SKIP")])] * 2
    v = overall(compare_checks(base, patched), {"new": []})
    assert v.status == "could not run" and v.exit_code == 2
    assert "no check but the smoke checks ran" in v.error
    smoke = [run([res("smoke.guest_basics")])] * 2
    assert overall(compare_checks(smoke, smoke), {"new": []}).exit_code == 0
    own = [run([res("smoke.guest_basics"), res("x.mine")])] * 2
    assert overall(compare_checks(own, own), {"new": []}).exit_code == 0


def test_an_infrastructure_error_is_left_out_of_the_comparison():
    """The host's link control failed, or a check's setup could not be established in a boot (the guest
    plugin marks both ERROR, infra): that says nothing of the kernel and is left out.  When every boot of
    both sides failed so, the check is "not compared"; when too few boots are left on a side it is
    undecided and buys more boots; otherwise the boots that ran decide."""
    infra = dict(res("a", "ERROR"), infra=True, message="infrastructure: QMP set_link failed")
    base = [run([res("a")]), run([res("a")])]
    checks = compare_checks([run([infra]), run([infra])], [run([infra]), run([infra])])
    assert (checks[0]["patched"]["status"], checks[0]["verdict"]) == ("ERROR", "not compared")
    assert checks[0]["patched"]["infra_errors"] == 2
    v = overall(checks, {"new": []})
    assert v.regressions == [] and v.not_compared == ["a"] and v.status == "could not run", \
        "nothing was compared: no evidence either way"
    c, b = compare_checks([run([res("a"), res("b")])] * 2, [run([infra, res("b")])] * 2)
    assert c["verdict"] == "undecided" and "set up in 2 base and 0 patched" in c["failures"]["why"]
    assert overall([c, b], {"new": []}).exit_code == 3
    assert compare_checks(base, [run([infra]), run([res("a")])])[0]["verdict"] == "undecided"
    assert compare_checks(base, [run([infra]), run([res("a")]), run([res("a")])])[0]["verdict"] == "unchanged"
    assert compare_checks(base, [run([infra]), run([res("a", "FAIL")])])[0]["failures"]["patched"] == [1, 1], \
        "the boot the machine did not fail still counts"
    plain = compare_checks(base * 2, [run([res("a", "ERROR")])] * 4)
    assert plain[0]["verdict"] == "regression", "an ordinary ERROR (a fixture the kernel broke) still counts"


def test_a_setup_error_beside_passes_shows_as_pass_with_its_count():
    infra = dict(res("a", "ERROR"), infra=True, message="setup: precondition not established")
    (c,) = compare_checks([run([res("a")])] * 3, [run([infra]), run([res("a")]), run([res("a")])])
    assert c["patched"]["status"] == "PASS" and c["patched"]["infra_errors"] == 1
    assert c["patched"]["statuses"] == ["ERROR", "PASS", "PASS"] and c["verdict"] == "unchanged"


def test_an_expected_kernel_clock_metric_falls_back_to_the_user_space_one_without_kprobes():
    """patches/linkwatch expects up_to_running_kernel; a kernel without kprobe events (6.1's lean config)
    has only up_to_running, timed in user space, and the expectation is judged on that, saying so."""
    def up(ms):
        r = res("a", "PASS", ms)
        r["metrics"][0]["name"] = "up_to_running"
        return r
    base = [run([up([900.0 + i for i in range(5)])]) for _ in range(3)]
    patched = [run([up([5.0 + i for i in range(5)])]) for _ in range(3)]
    checks = compare_checks(base, patched)
    (e,) = expected_effects({"metrics": [{"check": "a", "metric": "up_to_running_kernel", "change": "decrease"}]},
                            checks)
    assert e["held"] is True and e["observed"].startswith("(no kernel timestamps here: judged on up_to_running")
    (e,) = expected_effects({"metrics": [{"check": "a", "metric": "other_kernel", "change": "decrease"}]}, checks)
    assert e["held"] is None and e["observed"] == "not measured"


def test_a_check_run_once_a_side_is_not_called_fixed_on_one_boot_each():
    """An upstream program runs in one boot a side: its flaky case failing in the base boot and passing
    in the patched one is one draw each (a full bonding run of a behaviour-preserving refactor called
    one 'fixed' so).  Not compared; with boots of its own on each side it still can be fixed."""
    ok, bad = run([res("a")]), run([res("a", "FAIL")])
    (c,) = compare_checks([bad], [ok], once={"a"})
    assert c["verdict"] == "not compared" and "one boot a side" in c["why"]
    v = overall([c], {"new": []})
    assert v.improvements == [] and v.not_compared == ["a"]
    (c,) = compare_checks([bad] * 3, [ok] * 3)
    assert c["verdict"] == "fixed", "a check with a boot of its own each round keeps its verdict"


def test_fixed_is_a_claim_the_exact_test_must_back():
    """A check failing in every base boot and passing in every patched one: at 2 boots a side Fisher's
    p = 1/6, not "fixed" (seen: a starved guest's setup ping failed the loss check in 2 of 8 boots of one
    kernel, and every split with both on one side called it fixed); at 3, p = 1/20, fixed.  A base that
    passed the check in earlier runs of the same kernel makes its failures here less of a base trait."""
    ok, bad = run([res("a")]), run([res("a", "FAIL")])
    (c,) = compare_checks([bad] * 2, [ok] * 2)
    assert c["verdict"] == "not compared" and c["transition"] == "fixed"
    assert c["why"] == "fails in 2 of 2 base boots and none of 2 patched: p=0.167, too few boots to show it fixed"
    v = overall([c], {"new": []})
    assert v.improvements == [] and v.exit_code == 0, "an unproven fix buys no rounds and blocks nothing"
    (c,) = compare_checks([bad] * 3, [ok] * 3)
    assert c["verdict"] == "fixed" and overall([c], {"new": []}).improvements == ["a"]
    (c,) = compare_checks([bad] * 2, [ok] * 2, fail_history={"a": (4, 4)})
    assert c["verdict"] == "fixed", "a base that failed it in 4 earlier boots too: 6 of 6 against 0 of 2"
    (c,) = compare_checks([bad] * 3, [ok] * 3, fail_history={"a": (0, 10)})
    assert c["verdict"] == "not compared" and ", 0 of 10 in earlier runs of this base" in c["why"]
    # and the series' declared transition is the statuses', as before
    (e,) = expected_effects({"checks": [{"check": "a", "transition": "fixed"}]}, compare_checks([bad] * 2, [ok] * 2))
    assert e["held"] is True


def test_a_case_its_program_never_reached_is_a_failed_boot_not_a_regression_of_one_draw():
    """Seen in a full bonding run: bond_options.sh's prio group ended by the runner's 1200 s timeout on
    the patched boot, its last case never printed.  PASS on the base beside nothing on the patched side
    was called a regression from one boot a side.  The case failed in that boot (its program ran and
    failed), and its counts decide: 1 of 1 against 0 of 1 is undecided.  A case missing where its
    program passed, or did not run, is left alone."""
    node = "t.py::test_prog[x]"

    def prog(status, cases, message=None):
        return [{**res("up.prog", status), "id": node, "message": message}] + \
            [{**res(f"up.prog.{n}", st), "id": f"{node}::{n}"} for n, st in cases]

    base = [run(prog("FAIL", [("one", "FAIL"), ("two", "PASS"), ("last", "PASS")]))]
    patched = [run(prog("FAIL", [("one", "FAIL"), ("two", "PASS")], "upstream prio: FAIL (TIMEOUT 1200 seconds)"))]
    by = {c["path"]: c for c in compare_checks(base, patched)}
    last = by["up.prog.last"]
    assert last["verdict"] == "undecided" and last["transition"] == "regression", last
    assert last["failures"]["patched"] == [1, 1] and last["failures"]["base"] == [0, 1]
    assert "not reported: up.prog ended before this case (upstream prio: FAIL (TIMEOUT" in last["messages"]["patched"][0]
    assert by["up.prog.two"]["verdict"] == "unchanged"
    v = overall(list(by.values()), {"new": []})
    assert v.regressions == [] and v.status == "undecided"
    # in more boots the counts decide as for any check
    by = {c["path"]: c for c in compare_checks(base * 4, patched * 4)}
    assert by["up.prog.last"]["verdict"] == "regression" and by["up.prog.last"]["failures"]["patched"] == [4, 4]
    # the program passed without it, or was skipped: nothing is added
    for status in ("PASS", "SKIP"):
        patched = [run(prog(status, [("one", "PASS"), ("two", "PASS")]))]
        by = {c["path"]: c for c in compare_checks(base, patched)}
        assert by["up.prog.last"]["patched"]["statuses"] == [], status


def test_the_areas_control_path_spread_is_kept_per_boot():
    """Resolution on record (#28): each area names a control path; its spread in every boot of each side
    is kept, a boot that did not time it is None, and an area whose control no boot timed adds nothing."""
    from ktest.judge.verdict import control_spread

    path, _, metric = "linkwatch.host_link.host_cable_pull_and_restore.expired/restore_to_running_kernel".rpartition("/")

    def boot(samples):
        return {"results": [{"path": path, "status": "PASS",
                             "metrics": [{"name": metric, "unit": "ms", "samples": samples}]}]}

    other = {"results": [{"path": "linkwatch.operstate.x", "status": "PASS", "metrics": []}]}
    rows = control_spread(["linkwatch", "bonding"], [boot([1.0, 2.0, 3.0, 5.0]), other],
                          [boot([0.5, 0.5, 0.5, 0.5, 0.9])])
    assert rows == [{"area": "linkwatch", "control": f"{path}/{metric}", "unit": "ms",
                     "base": [1.75, None], "patched": [0.0]}]
    assert control_spread(["bonding"], [boot([1.0, 2.0, 3.0, 4.0])], []) == []
    bpath, _, bmetric = "bonding.active_backup.failover_to_highest_prio_survivor.miimon_10/monitor_work_kernel".rpartition("/")
    bond = {"results": [{"path": bpath, "status": "PASS",
                         "metrics": [{"name": bmetric, "unit": "ms", "samples": [0.5, 1.0, 0.4, 8.3, 0.6]}]}]}
    (row,) = control_spread(["bonding"], [bond], [other])
    assert row["control"] == f"{bpath}/{bmetric}" and row["base"] == [0.5] and row["patched"] == [None]


def test_the_drift_test_is_shared_among_the_runs_noise_models():
    """The run's base boots are tested against the noise model of every metric that has one; the 1 %
    is shared among those tests (Bonferroni), so that a run with many metrics does not report drift by
    chance.  The same base boots (F = 9.0 on 1 and 20 df, p = 0.007) are drift for a run with that one
    metric, and not for a run with two."""
    from scipy.stats import f

    def run(values):
        return {"results": [{"path": f"lw.c{i}", "status": "PASS",
                             "metrics": [{"name": "n", "unit": "count", "samples": [values[i]] * 3}]}
                            for i in range(len(values))]}

    model = {"centre": {"var": 1.0, "df": 20}, "source": "history"}
    assert 0.005 < f.sf(9.0, 1, 20) < 0.01
    base = [run([10.0, 10.0]), run([10.0 + 18.0 ** 0.5, 10.0 + 18.0 ** 0.5])]    # variance 9 between 2 boots
    patched = [run([10.0, 10.0]), run([11.0, 11.0])]
    one = compare_checks(base[:], patched, noise={"lw.c0/n": model})
    assert "drifted" in one[0]["metrics"][0]["noise"]
    two = compare_checks(base, patched, noise={"lw.c0/n": model, "lw.c1/n": model})
    assert all("drifted" not in c["metrics"][0]["noise"] for c in two)


def _waited(r, share):
    return {**r, "host_wait_share": share}


def _clear_regression(base_wait, patched_wait):
    """A 40 -> 90 ms shift in every boot, clear at 3 boots a side, each boot's check with its host wait
    (None: not recorded)."""
    def boot(r, w):
        return run([r if w is None else _waited(r, w)])
    base = [boot(res("lw", samples=[40.0 + i, 41 + i, 42 + i, 43 + i]), w) for i, w in enumerate(base_wait)]
    patched = [boot(res("lw", samples=[90.0 + i, 91 + i, 92 + i, 93 + i]), w) for i, w in enumerate(patched_wait)]
    (c,) = compare_checks(base, patched)
    return c


def test_a_timing_change_on_the_side_the_host_starved_more_is_undecided():
    """Every patched boot's guests waited for a host CPU far more while the check ran (a job on the host
    beside the patched boots only, as in a bonding run whose updelay check doubled): the slower side is
    the starved side, so the change is in doubt and buys boots, never a regression on that evidence."""
    same = _clear_regression([0.55, 0.60, 0.58], [0.57, 0.59, 0.61])
    assert same["metrics"][0]["verdict"] == "regressed" and same["verdict"] == "metric regression"
    assert same["host_wait"] == {"base": [0.55, 0.60, 0.58], "patched": [0.57, 0.59, 0.61]}
    c = _clear_regression([0.55, 0.60, 0.58], [0.80, 0.85, 0.78])
    (m,) = c["metrics"]
    assert (m["verdict"], m["doubt"], m["needs_boots"], c["verdict"]) == ("inconclusive", "harm", True, "undecided")
    assert "host starved the patched side" in m["reason"] and "55-60 %" in m["reason"] and "78-85 %" in m["reason"]
    v = overall([c], {"new": []})
    assert (v.status, v.exit_code) == ("undecided", 3)


def test_host_load_on_the_faster_side_or_overlapping_leaves_the_change_decided():
    # the base starved more, the patched slower all the same: the load does not explain the change
    assert _clear_regression([0.80, 0.85, 0.78], [0.55, 0.60, 0.58])["verdict"] == "metric regression"
    # one patched boot as starved as a base boot: the sides' loads overlap
    assert _clear_regression([0.55, 0.60, 0.70], [0.70, 0.85, 0.90])["verdict"] == "metric regression"
    # apart, but by less than HOST_LOAD_GAP at the medians
    assert _clear_regression([0.55, 0.56, 0.57], [0.58, 0.60, 0.62])["verdict"] == "metric regression"
    # no host wait recorded (a result from before it was, or a check without a window): as before
    assert _clear_regression([None] * 3, [None] * 3)["verdict"] == "metric regression"


def test_an_improvement_on_the_side_the_host_starved_less_is_undecided_and_counts_are_not_times():
    base = [run([_waited(res("lw", samples=[900.0 + i, 905, 899]), 0.85)]) for i in range(3)]
    patched = [run([_waited(res("lw", samples=[300.0 + i, 304, 303]), 0.50)]) for i in range(3)]
    (c,) = compare_checks(base, patched)
    assert (c["metrics"][0]["verdict"], c["metrics"][0]["doubt"]) == ("inconclusive", "benefit")
    assert "host starved the base side" in c["metrics"][0]["reason"]
    # a change larger than any the host's load makes (HOST_LOAD_MAX_RATIO): the seed's 916 -> 0.8 ms
    patched = [run([_waited(res("lw", samples=[0.8 + i, 0.7, 0.9]), 0.30)]) for i in range(3)]
    (c,) = compare_checks(base, patched)
    assert c["metrics"][0]["verdict"] == "improved"
    base = [run([_waited(res("lw", samples=[30.0, 31, 32], unit="runs"), 0.5)]) for _ in range(3)]
    patched = [run([_waited(res("lw", samples=[60.0, 61, 62], unit="runs"), 0.9)]) for _ in range(3)]
    (c,) = compare_checks(base, patched)     # a count of monitor runs does not stretch with the host's load
    assert c["metrics"][0]["verdict"] == "regressed"


def test_the_report_shows_the_host_wait_of_each_boot_and_of_each_check(tmp_path):
    from ktest.base.result import Result
    from ktest.report.outputs import render_html

    bw, pw = (0.55, 0.60, 0.58), (0.80, 0.85, 0.78)
    base = [run([_waited(res("lw", samples=[40.0 + i, 41 + i, 42 + i]), w)]) for i, w in enumerate(bw)]
    patched = [run([_waited(res("lw", samples=[90.0 + i, 91 + i, 92 + i]), w)]) for i, w in enumerate(pw)]
    boots = [{"side": side, "round": i + 1, "purpose": "round", "label": f"{side}-{i + 1}", "results": [],
              "boot": {"outcome": "ok", "console_log": "c.log", "stdout_log": "s.log"}, "env": {"host_wait_share": w}}
             for side, ws in (("base", bw), ("patched", pw)) for i, w in enumerate(ws)]
    html = render_html(Result.from_json(judged(minimal(boots=boots), base, patched)), tmp_path)
    assert 'id="host-load"' in html and "; base boots 55 %, 60 %, 58 %; patched boots 80 %, 85 %, 78 %." in html
    assert "its guests waited for a host CPU base 55 %, 60 %, 58 %; patched 80 %, 85 %, 78 % of the time" in html
    assert "the host starved the patched side" in html
