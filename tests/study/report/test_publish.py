"""The report where people look: MLflow's UI shows the study's answer, report and readable trials."""
from __future__ import annotations

import json

import pandas as pd

from harness.config import from_dict
from harness.record import TrialRecord
from harness.study import store
from harness.study.report.document import Document, html_table
from harness.study.report.publish import (KIND, MODEL_DEVELOPMENT, NOTE, SHARED_VIEW, VIEW_KEY, answer_section,
                                          describe_experiment,
                                          publish_report, study_url)
from harness.trial import trials_of
import pytest

pytestmark = pytest.mark.usefixtures("stand_in_floors")   # tests/conftest.py


def test_answer_section_is_the_reports_first_screen():
    md = "# Study\n\nintro\n\n## Answer\n\nGAN wins.\n\nNo pair differs.\n\n## Success rates\n\ntable\n"
    assert answer_section(md) == "GAN wins.\n\nNo pair differs."
    assert answer_section("no heading at all") == "no heading at all"


def test_html_tables_have_one_header_row_and_images_are_embedded(tmp_path):
    wins = pd.DataFrame([[0, 2], [-2, 0]], index=pd.Index(["gan", "sngan"], name="A"),
                        columns=pd.Index(["gan", "sngan"], name="B"))
    page = html_table(wins, index=True)
    assert page.count("<tr") == 3 and "<th>A \\ B</th>" in page      # header + 2 rows, no empty header row
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    doc = Document()
    doc.img("plots/p.png", "a plot")
    doc.table(wins, index=True)
    html = doc.html("t", base=tmp_path)
    assert "data:image/png;base64," in html and "src='plots/p.png'" not in html
    assert "src='plots/p.png'" in doc.html("t")                       # without a base: a relative link


def test_a_finished_trial_is_named_by_method_seed_outcome_and_score(project):
    exp = from_dict({"name": "pub", "dataset": "ring8", "objectives": ["gan", "wgan-gp"],
                     "space": {"n": 1, "seed": 0}, "description": "Two objectives on the ring."})
    client = store.get_client()
    exp_id = store.open_experiment(client, "pub")
    describe_experiment(client, exp_id, exp.description)
    tags = client.get_experiment(exp_id).tags
    assert tags[NOTE] == "Two objectives on the ring." and tags[KIND] == MODEL_DEVELOPMENT
    pid = store.start_parent(client, exp_id, "pub", "1/1", exp.to_dict(), 2, "pub.yaml")
    runs = store.ChildRuns(client, exp_id, pid, "pub", "1/1")
    t = trials_of(exp)[1]
    runs.start(t.id, t.params())
    assert client.get_run(runs.open[t.id]).info.run_name == f"wgan-gp · seed 0 · {t.arch.id} · running"
    rid = runs.open[t.id]
    runs.finish(TrialRecord(t.id, t.arch.id, t.objective, t.seed, status="collapsed", headline="modes_covered",
                            metrics={"modes_covered": 3.0}, iterations=10, params=t.params()))
    assert client.get_run(rid).info.run_name == f"wgan-gp · seed 0 · {t.arch.id} · collapsed · modes_covered 3"

    out = project / "results" / "pub"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "success_rate.png").write_bytes(b"\x89PNG fake")
    (out / "report.md").write_text("# Robustness study: pub\n\n## Answer\n\nwgan-gp collapses.\n\n## More\n")
    (out / "report.html").write_text("<html></html>")
    assert publish_report(client, "pub", out) == 1
    assert client.get_run(pid).data.tags[NOTE] == "wgan-gp collapses."
    listed = {a.path for a in client.list_artifacts(pid, "report")}
    assert {"report/report.html", "report/report.md", "report/plots"} <= listed
    assert store.latest_sweep(client) == "pub"
    assert study_url("http://127.0.0.1:5000/", exp_id).startswith(f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs?")
    view = json.loads(client.get_experiment(exp_id).tags[SHARED_VIEW + VIEW_KEY])
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "objective"}]
