"""The one place this project reaches past torch's documented TensorBoard API."""

from __future__ import annotations

from pathlib import Path

from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from digits.training.tensorboard import write_summaries
from tests.conftest import read_events


def test_summaries_go_into_the_writers_own_event_file(tmp_path: Path):
    writer = SummaryWriter(tmp_path)
    write_summaries(writer, hparams({"lr": 0.5, "network": "MLP"}, {"val/acc_best": 0.0}))
    writer.close()
    assert [path.parent for path in tmp_path.rglob("events.out.tfevents.*")] == [tmp_path]
    content = read_events(tmp_path).PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["lr"].number_value == 0.5
    assert session.session_start_info.hparams["network"].string_value == "MLP"
