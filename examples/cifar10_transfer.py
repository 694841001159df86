"""CIFAR-100 -> CIFAR-10: warm-start a fine-tuning search from a cheap source study.

1. A cheap source study tunes ResNet-18 fine-tuning on CIFAR-100 (1 epoch on a 20% subset),
   stored in SQLite.
2. Optionally, ``pretrain_checkpoint`` trains our own CIFAR-100 backbone (no ImageNet download
   needed) for the target to fine-tune from.
3. The target study on CIFAR-10 samples with ``TransferTPESampler(source_study)``, so its first
   trials already favour what worked on CIFAR-100.

Real data (GPU recommended; CIFAR is downloaded into --data-dir when online)::

    python examples/cifar10_transfer.py --data-dir data --storage sqlite:///cifar_transfer.db

Offline smoke run on CPU with synthetic data (< 1 minute; the source labels 10 of CIFAR-100's
classes, so that it learns in one epoch)::

    python examples/cifar10_transfer.py --synthetic --fast
"""

from __future__ import annotations

import argparse
from pathlib import Path
import tempfile
from typing import Any

import optuna


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both studies; returns their trials (``"source"``, ``"target"``) and chance levels."""
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution

    from optuna_transfer import redact_url
    from optuna_transfer import TransferTPESampler
    from optuna_transfer.objectives import CifarFineTune
    from optuna_transfer.objectives import pretrain_checkpoint
    from optuna_transfer.objectives import write_synthetic_cifar

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data", help="holds cifar-10-batches-py etc.")
    parser.add_argument("--storage", help="Optuna storage URL (default: SQLite in --workdir)")
    parser.add_argument("--workdir", default=".", help="where the SQLite file and checkpoint go")
    parser.add_argument("--weights", default=None,
                        help="'imagenet', a state-dict path, or 'none' (default: imagenet, or "
                             "none with --synthetic)")
    parser.add_argument("--pretrain-epochs", type=int, default=0,
                        help="if > 0, pretrain our own CIFAR-100 backbone and fine-tune from it")
    parser.add_argument("--source-trials", type=int, default=30)
    parser.add_argument("--target-trials", type=int, default=20)
    parser.add_argument("--source-subset", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=5, help="target epochs per trial")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", action="store_true",
                        help="write small synthetic CIFAR-10/100 into a temporary folder")
    parser.add_argument("--fast", action="store_true",
                        help="tiny sizes and few trials: a CPU smoke run")
    args = parser.parse_args(argv)

    resolution, fixed, space = 32, None, None
    source_classes = 100  # classes the source's labels use
    if args.fast:
        import torch

        torch.set_num_threads(1)  # tiny batches: extra threads only add synchronisation
        args.source_trials, args.target_trials, args.epochs = 3, 3, 1
        args.pretrain_epochs = 1
        args.device = "cpu"
        resolution = 16
        fixed = {"frozen_stages": 0}
        # One epoch over a few hundred images: smaller rates barely move a network trained from
        # scratch, and every trial would score chance.
        space = {
            "batch_size": CategoricalDistribution((16, 32)),
            "lr": FloatDistribution(1e-2, 3e-1, log=True),
        }
        args.source_subset = 1.0

    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            args.data_dir, args.workdir = tmp, tmp
            n_train, n_test = (300, 50) if args.fast else (5000, 1000)
            if args.fast:
                # 100 classes cannot be learned from a few hundred images in one epoch: the
                # fast source labels 10 of them (the format and the 100-way head stay).
                source_classes = 10
            write_synthetic_cifar(tmp, 400 if args.fast else n_train, n_test, num_classes=100,
                                  seed=args.seed, used_classes=source_classes)
            write_synthetic_cifar(tmp, n_train, n_test, num_classes=10, seed=args.seed + 1)
        weights = args.weights or ("none" if args.synthetic else "imagenet")
        weights_arg = None if weights.lower() == "none" else weights
        storage = args.storage or f"sqlite:///{Path(args.workdir) / 'cifar_transfer.db'}"
        print(f"storage: {redact_url(storage)}")
        common = {"device": args.device, "resolution": resolution, "seed": args.seed,
                  "fixed": fixed, "space": space}

        source = optuna.create_study(
            study_name="cifar100-source", storage=storage, direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=args.seed), load_if_exists=True,
        )
        source.optimize(
            CifarFineTune("cifar100", args.data_dir, epochs=1, weights=weights_arg,
                          train_subset=args.source_subset, **common),
            n_trials=args.source_trials,
        )
        print(f"source trials' val accuracy: {_accuracies(source)} (chance "
              f"{1 / source_classes:.2f})")
        print(f"source best val accuracy {source.best_value:.4f}: {source.best_params}")

        if args.pretrain_epochs > 0:
            weights_arg = str(pretrain_checkpoint(
                args.data_dir, Path(args.workdir) / "resnet18_cifar100.pt",
                epochs=args.pretrain_epochs, resolution=resolution, device=args.device,
                batch_size=32 if args.fast else 128, seed=args.seed,
            ))
            print(f"pretrained CIFAR-100 checkpoint: {weights_arg}")

        target = optuna.create_study(
            study_name="cifar10-target", storage=storage, direction="maximize",
            sampler=TransferTPESampler(source, seed=args.seed),
            pruner=optuna.pruners.MedianPruner(n_warmup_steps=1), load_if_exists=True,
        )
        target.optimize(
            CifarFineTune("cifar10", args.data_dir, epochs=args.epochs, weights=weights_arg,
                          **common),
            n_trials=args.target_trials,
        )
        best = target.best_trial
        print(f"target trials' val accuracy: {_accuracies(target)} (chance 0.10; the first "
              f"trial is the source's best configuration)")
        print(f"target best val accuracy {best.value:.4f}, test accuracy "
              f"{best.user_attrs['test_accuracy']:.4f}: {best.params}")
        # Read before a --synthetic run's temporary SQLite file is deleted.
        return {
            "source": source.get_trials(deepcopy=True),
            "target": target.get_trials(deepcopy=True),
            "source_chance": 1 / source_classes,
            "target_chance": 1 / 10,
        }


def _accuracies(study: optuna.Study) -> str:
    return ", ".join(
        f"{t.value:.3f}" if t.value is not None else t.state.name.lower()
        for t in study.get_trials(deepcopy=False)
    )


if __name__ == "__main__":
    main()
