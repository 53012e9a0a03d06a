"""Training and inference throughput of any task type with demo data, measured through the
`TaskType` interface the pipelines call (so every task type is measured the same way), on its
own demo dataset in a throw-away local folder, with its pipeline configs (one epoch).

    python -m benchmarks.task_type_models detection transcription [--quick]
"""

from __future__ import annotations

import tempfile
from typing import Any

import click

from annotation_loop.configs import (
    InferenceParameters,
    config_path,
    load_parameters,
    load_training_parameters,
)
from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.task_types import Example, TaskType, demo_data_of, get_task_type
from benchmarks.figures import Row, median_rate, timed

# What differs from configs/<task>/training.yaml: the transcription default (pocketsphinx)
# fits nothing, and offline the only CTC model there is to fine-tune is the tiny random one.
TRAINING_OVERRIDES: dict[str, dict[str, Any]] = {"transcription": {"base_model": "random-tiny"}}


def demo_examples(task_type: TaskType, store: ObjectStore, truth: dict[str, Any]) -> list[Example]:
    """The demo items of `store`'s batch_1 with their `truth` as examples, read as the steps
    read them."""
    listing = task_type.list_items(store, "batch_1")
    refs = [
        (item.key, task_type.input_ref(task_type.task_data(item, store))) for item in listing.items
    ]
    return [
        Example(key, model_input, truth[key])
        for key, model_input in task_type.load_inputs(store, refs)
        if model_input is not None and key in truth
    ]


def task_type_rows(tasks: tuple[str, ...], repeats: int, quick: bool) -> list[Row]:
    rows: list[Row] = []
    for task in tasks:
        task_type = get_task_type(task)
        # A demo batch to train on and one to predict: sized so that a round takes minutes.
        n_train = n_predict = task_type.defaults.demo_batch_size // (4 if quick else 1)
        training = load_training_parameters(task)
        batch_size = load_parameters(config_path(task, "inference"), InferenceParameters).batch_size
        config: dict[str, Any] = {
            **training.train_config,
            **TRAINING_OVERRIDES.get(task, {}),
            "epochs": 1,
        }
        with tempfile.TemporaryDirectory(prefix=f"bench-{task}-") as root:
            store = ObjectStore(DataSource(root_uri=root, dataset="demo"))
            truth = demo_data_of(task_type).seed_demo(
                store, batches=1, batch_size=n_train + n_predict, seed=0
            )
            examples = demo_examples(task_type, store, truth)
        train_set, predict_set = examples[:n_train], examples[n_train:]
        labels = task_type.defaults.labels
        train_runs = [
            timed(task_type.train, train_set, labels, config, None) for _ in range(repeats)
        ]
        model, _ = task_type.train(train_set, labels, config, None)
        inputs = [(example.key, example.input) for example in predict_set]
        task_type.predict(model, inputs[:batch_size], batch_size)  # loads what predict keeps
        predict_runs = [timed(task_type.predict, model, inputs, batch_size) for _ in range(repeats)]
        unit = f"{task_type.item_description.split()[-1]}/s"
        rows.append(
            Row(f"{task}: training, one epoch", median_rate(len(train_set), train_runs), unit)
        )
        rows.append(
            Row(
                f"{task}: inference, batches of {batch_size}",
                median_rate(len(predict_set), predict_runs),
                unit,
            )
        )
    return rows


@click.command()
@click.argument("tasks", nargs=-1)
@click.option("--quick", is_flag=True)
@click.option("--repeats", default=3, show_default=True)
def main(tasks: tuple[str, ...], quick: bool, repeats: int) -> None:
    """Prints the figures of TASKS (task type names)."""
    for row in task_type_rows(tasks, 1 if quick else repeats, quick):
        click.echo(f"{row.measure}: {row.ours:.1f} {row.unit}")


if __name__ == "__main__":
    main()
