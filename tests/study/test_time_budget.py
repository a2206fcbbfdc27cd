import pandas as pd

from harness.study.time_budget import busy_seconds, per_method_times, time_budget


def test_parts_add_up_to_each_child_runs_lifetime():
    df = pd.DataFrame({"wall_time_s": [10.0, 20.0], "train_time_s": [6.0, 15.0], "eval_time_s": [2.0, 3.0],
                       "start_time": [1_000, 2_000], "end_time": [13_000, 24_000]})
    table, sentence = time_budget(df, [30.0])
    parts = table.set_index("part")["seconds"]
    assert parts["training"] == 21 and parts["evaluation"] == 5
    assert parts["trial set-up and final samples"] == 4            # 10-6-2 + 20-15-3
    assert parts["Ray, Tune and MLflow around the trial"] == 4     # (12-10) + (22-20)
    assert parts.sum() == 12 + 22                                  # the child runs' lifetimes
    assert "30 s of wall time" in sentence and "1.13-fold" in sentence     # 34 s of trials in 30 s
    assert "for 7 s (23.3 %) no trial was running" in sentence        # 30 - (24 - 1)


def test_records_without_times_give_no_table():
    assert time_budget(pd.DataFrame(), []) is None
    running = pd.DataFrame({"wall_time_s": [0.0], "train_time_s": [0.0], "eval_time_s": [0.0],
                            "start_time": [1], "end_time": [None]})
    assert time_budget(running, [10.0]) is None


def test_busy_time_merges_overlaps_and_skips_gaps():
    # two overlapping trials (0-10 s, 5-12 s), then a pause of a day, then one trial of 3 s
    day = 86_400_000
    assert busy_seconds([(5_000, 12_000), (0, 10_000), (day, day + 3_000)]) == 15.0
    assert busy_seconds([(0, 10_000), (2_000, 4_000)]) == 10.0      # one inside another
    assert busy_seconds([]) == 0.0


def test_two_sweep_runs_a_day_apart_count_only_their_own_time():
    day = 86_400_000
    df = pd.DataFrame({"wall_time_s": [10.0, 10.0], "train_time_s": [9.0, 9.0], "eval_time_s": [0.5, 0.5],
                       "start_time": [1_000, day + 1_000], "end_time": [11_000, day + 11_000]})
    _, sentence = time_budget(df, [12.0, 13.0])
    assert "25 s of wall time (2 sweep run(s))" in sentence and "for 5 s (20.0 %) no trial" in sentence


def test_a_sweep_run_whose_time_is_missing_gives_no_overlap_figure():
    # trials busy for 200 s in all, but the sweep runs logged only 8 s (one killed before it logged)
    df = pd.DataFrame({"wall_time_s": [100.0, 100.0], "train_time_s": [90.0, 90.0], "eval_time_s": [5.0, 5.0],
                       "start_time": [0, 500_000], "end_time": [100_000, 600_000]})
    _, sentence = time_budget(df, [8.0])
    assert "running for 200 s of wall time, more than the 8 s" in sentence
    assert "fold" not in sentence and "no trial was running" not in sentence
    # a killed run's last log is up to one clock interval short: not taken for a missing time
    _, sentence = time_budget(df, [190.0])
    assert "missing" not in sentence and "190 s of wall time" in sentence


def test_per_method_times_leave_resumed_trials_out_of_the_wall_columns():
    df = pd.DataFrame({"objective": ["gan", "gan", "gan", "wgan-gp"],
                       "wall_time_s": [60.0, 180.0, 30.0, 600.0],     # the third resumed: last attempt only
                       "its_per_s": [10.0, 4.0, 2.0, 0.5], "resumed_from": [None, 0, 400, None]})
    table = per_method_times(df).set_index("method")
    assert table.loc["gan", "trials"] == 3 and table.loc["gan", "resumed"] == 1
    assert (table.loc["gan", "fastest (min)"], table.loc["gan", "mean (min)"],
            table.loc["gan", "slowest (min)"]) == (1.0, 2.0, 3.0)
    assert table.loc["gan", "iterations/s"] == "2-10"                 # speed over every trial
    assert table.loc["wgan-gp", "mean (min)"] == 10.0 and table.loc["wgan-gp", "resumed"] == 0


def test_per_method_times_need_finished_trials():
    assert per_method_times(pd.DataFrame()) is None
    assert per_method_times(pd.DataFrame({"objective": ["gan"], "wall_time_s": [0.0], "its_per_s": [0.0]})) is None


def test_an_attempt_lost_to_a_dead_node_is_its_own_part_and_counts_as_busy_time():
    """The second trial's first attempt ran 5 s on a node that died; its run was replaced by the
    retry's, which carries those 5 s (store.LOST_TAG)."""
    from harness.study.store import LOST_TAG
    from harness.study.time_budget import LOST_PART
    df = pd.DataFrame({"wall_time_s": [10.0, 20.0], "train_time_s": [6.0, 15.0], "eval_time_s": [2.0, 3.0],
                       "start_time": [1_000, 8_000], "end_time": [13_000, 30_000], LOST_TAG: [None, 5.0]})
    table, sentence = time_budget(df, [30.0])
    parts = table.set_index("part")["seconds"]
    assert parts[LOST_PART] == 5 and parts.sum() == 12 + 22 + 5
    assert "for 1 s (3.3 %) no trial was running" in sentence    # 30 - (30 - 1): the lost attempt from 3 s on
