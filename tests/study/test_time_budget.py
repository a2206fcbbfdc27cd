import pandas as pd

from harness.study.time_budget import time_budget


def test_parts_add_up_to_each_child_runs_lifetime():
    df = pd.DataFrame({"wall_time_s": [10.0, 20.0], "train_time_s": [6.0, 15.0], "eval_time_s": [2.0, 3.0],
                       "start_time": [1_000, 2_000], "end_time": [13_000, 24_000]})
    table, sentence = time_budget(df, [(0, 30_000)])
    parts = table.set_index("part")["seconds"]
    assert parts["training"] == 21 and parts["evaluation"] == 5
    assert parts["trial set-up and final samples"] == 4            # 10-6-2 + 20-15-3
    assert parts["Ray, Tune and MLflow around the trial"] == 4     # (12-10) + (22-20)
    assert parts.sum() == 12 + 22                                  # the child runs' lifetimes
    assert "30 s of wall time" in sentence and "1.13-fold" in sentence     # 34 s of trials in 30 s
    assert "7 s (23.3 %) passed before the first trial" in sentence        # 30 - (24 - 1)


def test_records_without_times_give_no_table():
    assert time_budget(pd.DataFrame(), []) is None
    running = pd.DataFrame({"wall_time_s": [0.0], "train_time_s": [0.0], "eval_time_s": [0.0],
                            "start_time": [1], "end_time": [None]})
    assert time_budget(running, [(0, 10)]) is None
