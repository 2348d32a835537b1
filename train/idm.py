"""Train an inverse-dynamics model (IDM) on real frames; optionally score a world's action following.

    python -m train.idm --data data/coinrun_train --out runs/idm_coinrun.pt --steps 1500
    python -m train.idm --idm runs/idm_coinrun.pt --world checkpoints/coinrun.pt --eval-data data/coinrun_heldout
    python -m train.idm --data data/coinrun_train --out runs/idm.pt --world checkpoints/coinrun.pt --eval-data data/coinrun_heldout

The IDM guesses the action between two consecutive frames. With --world and
--eval-data, the world rolls out held-out windows from their recorded actions and
the IDM's accuracy on the generated transitions is printed next to its accuracy
on the real ones (the ceiling) and chance. The result goes to --report (JSON).
It runs in one process: under torchrun it stops with one line saying so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ochre.cli import ArgumentParser, int_range, known_device, nonneg_int, positive_float, positive_int, writable_file
from ochre.data.store import EpisodeDataset
from ochre.device import choose_device
from ochre.errors import OchreError, cli_entry
from ochre.idm import FrameIDM, action_following, format_action_following, load_idm, save_idm, train_idm
from ochre.io import write_json
from ochre.runtime import WorldModel
from ochre.training.distributed import refuse_launch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--data", help="frame dataset to train on (episodes split into train/validation)")
    p.add_argument("--out", type=writable_file, help="where to write the trained IDM checkpoint (.pt)")
    p.add_argument("--idm", help="evaluate this trained IDM instead of training one")
    p.add_argument("--steps", type=positive_int, default=2000, help="training steps")
    p.add_argument("--batch", type=positive_int, default=64, help="frame pairs per step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--channels", type=positive_int, nargs="+", default=[32, 64, 128, 128], help="width of each stride-2 conv")
    p.add_argument("--val-every", type=int_range(2), default=10, help="every n-th episode is held out for validation")
    p.add_argument("--world", help="world checkpoint to score for action following")
    p.add_argument("--eval-data", help="held-out frame dataset for action following")
    p.add_argument("--windows", type=positive_int, default=256, help="held-out windows to roll out")
    p.add_argument("--context", type=positive_int, default=4, help="seed frames K")
    p.add_argument("--horizon", type=positive_int, default=8, help="generated frames N")
    p.add_argument("--report", type=writable_file, help="write the results here as JSON (default: next to --out / --idm)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="training and window selection seed")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda | cuda:N | mps")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """One error line for a missing or contradictory combination of flags."""
    if args.idm and args.data:
        raise OchreError("pass either --data (train an IDM) or --idm (use a trained one), not both")
    if not args.idm and not (args.data and args.out):
        raise OchreError("training needs --data DIR and --out FILE.pt (or pass --idm FILE to evaluate a trained IDM)")
    if bool(args.world) != bool(args.eval_data):
        raise OchreError("--world and --eval-data go together (the world to score and the held-out frames to seed it)")
    if args.idm and not args.world:
        raise OchreError("--idm only evaluates: add --world CHECKPOINT --eval-data DIR")


def obtain_idm(args: argparse.Namespace, device: str) -> FrameIDM:
    """Load --idm, or train on --data and save to --out."""
    if args.idm:
        model, _ = load_idm(args.idm, device)
        return model
    data = EpisodeDataset(args.data, expect_kind="frames")
    model, report = train_idm(
        data, data.action_spec, args.steps, args.batch, args.lr, args.val_every, args.seed, device, tuple(args.channels)
    )
    save_idm(args.out, model, data.action_spec, report.val_accuracy)
    print(
        f"validation accuracy {report.mean_val_accuracy:.3f} on {report.val_pairs} held-out pairs (final loss {report.final_loss:.3f})"
    )
    print(f"wrote {args.out}")
    return model


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_args(args)
    refuse_launch("train.idm", "python -m train.idm ... (without torchrun)")
    choice = choose_device(args.device, "--device")
    print(choice)
    device = str(choice.device)
    wm = WorldModel.load(args.world, device=device) if args.world else None
    eval_data = EpisodeDataset(args.eval_data, expect_kind="frames") if args.eval_data else None
    if wm is not None and args.data:  # fail before training, not after
        shape = EpisodeDataset(args.data, expect_kind="frames").manifest["frame_shape"]
        if tuple(shape) != wm.frame_shape:
            raise OchreError(f"{args.data}: frames are {shape} but the world {args.world} makes {list(wm.frame_shape)} frames")
    model = obtain_idm(args, device)
    if wm is None or eval_data is None:
        return
    result = action_following(model, wm, eval_data, args.windows, args.context, args.horizon, args.seed)
    print(format_action_following(result))
    report = Path(args.report) if args.report else Path(args.out or args.idm).with_suffix(".action_following.json")
    write_json(report, result | {"world": args.world, "eval_data": args.eval_data, "idm": args.out or args.idm})
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
