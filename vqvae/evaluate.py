"""Reconstruction quality and codebook usage of a tokenizer on held-out frames.

python -m vqvae.evaluate --tokenizer runs/<run>/checkpoints/tokenizer.pt --data data/coinrun_heldout
python -m vqvae.evaluate --tokenizer checkpoints/coinrun.pt --data data/coinrun_train --split val

--tokenizer takes a tokenizer checkpoint or a world checkpoint (its tokenizer is used).
Prints PSNR (RGB and gray 84x84), SSIM, LPIPS (when its backbone is available),
codes in use and perplexity; on Pong, how often the one-pixel ball survives (the
reconstruction's ball within 2 px of the frame's, among frames with a ball: the
ceiling of the world's ball check). Writes summary.json, a reconstruction grid and a
video (input | reconstruction) of one held-out episode into the output folder. On that
episode it also counts how many token cells change from frame to frame, next to how many
cells' pixels do: tokens that change where the picture did not are extra work for the
dynamics model. A continuous tokenizer (model.quantizer=continuous) has no codes: it reports
its latent statistics instead (overall and per-channel mean and std of the latent means
on the scored frames, the scale the KL term keeps calibrated).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ochre.checkpoint import load_tokenizer_or_world
from ochre.cli import ArgumentParser, input_file, input_path, int_range, known_device, nonneg_int, positive_int, writable_dir
from ochre.data.store import EpisodeDataset
from ochre.data.windows import split_episodes
from ochre.device import resolve_device
from ochre.errors import OchreError, cli_entry
from ochre.frames import to_model
from ochre.images import image_grid
from ochre.io import write_json, write_png, write_video
from ochre.losses import load_lpips
from ochre.models.tokenizer import Tokenizer
from ochre.playtest.checks import find_play_checks, play_checks
from ochre.playtest.scores import laplacian_variance
from ochre.tokenizer_eval import evaluate_reconstruction, reconstruct, sample_frames, token_changes
from ochre.training.logger import make_run_dir
from ochre.world_checks import BALL_TOL_PX, ball_errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--tokenizer", type=input_file, required=True, help="tokenizer or world checkpoint")
    p.add_argument("--data", type=input_path, required=True, help="frame dataset (held-out levels/episodes)")
    p.add_argument("--split", default="all", choices=["all", "val", "train"], help="episodes to use (default: all)")
    p.add_argument("--val-every", type=int_range(2), default=10, help="every n-th episode is validation (for --split val/train)")
    p.add_argument("--frames", type=positive_int, default=2048, help="frames to score, drawn uniformly")
    p.add_argument("--seed", type=nonneg_int, default=0, help="frame selection seed")
    p.add_argument("--lpips-weights", type=input_file, default="", help="LPIPS backbone weights file (default: torch hub cache)")
    p.add_argument("--device", type=known_device, default="auto", help="auto | cpu | cuda")
    p.add_argument("--out", type=writable_dir, default=None, help="output folder (default: runs/<time>_<world>_vqvae_eval)")
    return p.parse_args(argv)


def objects_kept(data: EpisodeDataset, frames: np.ndarray, recon: np.ndarray) -> dict[str, dict[str, float]]:
    """Per object of the world's play-test finder (ochre/playtest/checks.py): of the frames that show it, how many
    still show it within the play tests' tolerance once encoded and decoded (the ceiling of the avatar score)."""
    try:
        checks = play_checks(str(data.manifest.get("world", "")), data.action_spec)
        finder = checks.avatar() if checks.avatar else None
    except OchreError:
        return {}
    if finder is None:
        return {}
    real, rec = finder.find(frames), finder.find(recon)
    out = {}
    for j, name in enumerate(finder.names):
        shown = ~np.isnan(real[:, j, 0])
        dist = np.hypot(*(rec[shown, j] - real[shown, j]).T)
        kept = int((np.nan_to_num(dist, nan=np.inf) <= checks.avatar_tol_px).sum())
        out[name] = {"frames": int(shown.sum()), "kept": kept, "tol_px": checks.avatar_tol_px}
    return out


@torch.no_grad()
def latent_statistics(model: Tokenizer, frames: np.ndarray, device: torch.device, batch: int = 64) -> dict[str, object]:
    """A continuous tokenizer's latent means of `frames` (N, H, W, 3) uint8: mean, std, largest |value|, and per channel."""
    z = torch.cat(
        [model.encode_latents(to_model(frames[i : i + batch], device)).float().cpu() for i in range(0, len(frames), batch)]
    )
    per_channel = z.transpose(0, 1).flatten(1)  # (C, N*h*w)
    return {
        "mean": float(z.mean()),
        "std": float(z.std()),
        "abs_max": float(z.abs().max()),
        "channel_mean": [round(float(v), 4) for v in per_channel.mean(1)],
        "channel_std": [round(float(v), 4) for v in per_channel.std(1)],
    }


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    model = load_tokenizer_or_world(args.tokenizer).to(device)
    data = EpisodeDataset(args.data, expect_kind="frames")
    if list(data.manifest["frame_shape"][:2]) != list(model.cfg.frame_size):
        raise OchreError(
            f"{args.data}: frames are {data.manifest['frame_shape'][:2]} but the tokenizer takes {model.cfg.frame_size}"
        )
    frames = sample_frames(data, args.frames, args.split, args.val_every, args.seed)
    lpips = load_lpips("alex", args.lpips_weights, warn=lambda m: print(f"warning: {m}"))
    report, recon = evaluate_reconstruction(model, frames, device, lpips.to(device) if lpips else None)
    out = Path(args.out) if args.out else make_run_dir("runs", data.manifest.get("world", "world"), "vqvae_eval")
    extra = {}
    registered = find_play_checks(str(data.manifest.get("world", "")), data.action_spec)
    if registered is not None and "ball" in registered.evaluator:
        seen, error = ball_errors(recon[:, None], frames[:, None])
        extra["ball_kept"] = {
            "frames": int(seen.sum()),
            "within_tol": int((error[seen] <= BALL_TOL_PX).sum()),
            "tol_px": BALL_TOL_PX,
        }
    extra["detail_ratio"] = float(laplacian_variance(recon).mean() / max(laplacian_variance(frames).mean(), 1e-12))
    extra["objects_kept"] = objects_kept(data, frames, recon)
    sh, st, n = split_episodes(data.episodes(), args.split, args.val_every)[0]
    episode = np.array(data.shards[sh]["frames"][st : st + min(n, 300)])
    episode_recon, episode_tokens = reconstruct(model, episode, device)
    if model.cfg.continuous:
        extra["latent"] = latent = latent_statistics(model, frames, device)
        scores = {k: v for k, v in vars(report).items() if k not in ("codes_used", "codebook_size", "perplexity")}
        codes_line = f"  latent         mean {latent['mean']:+.3f}, std {latent['std']:.3f}, |max| {latent['abs_max']:.2f} ({model.cfg.latent_channels} channels)\n"
        changes_line = ""
    else:
        extra["token_changes"] = changes = token_changes(episode_tokens, episode)
        scores = report.to_dict()
        codes_line = f"  codes in use   {report.codes_used}/{report.codebook_size} ({100 * report.usage:.1f}%), perplexity {report.perplexity:.1f}\n"
        changes_line = f"  tokens changed {100 * changes['token_changed']:.1f}% of cells per frame (pixels changed in {100 * changes['patch_changed']:.1f}%)\n"
    write_json(out / "summary.json", scores | extra | {"tokenizer": args.tokenizer, "data": args.data, "split": args.split})
    write_png(out / "recon_grid.png", image_grid([frames[:16], recon[:16]]))
    write_video(out / "recon.mp4", np.concatenate([episode, episode_recon], axis=2), fps=data.manifest.get("fps", 15), scale=4)
    lp = f"{report.lpips:.4f}" if report.lpips is not None else "n/a (backbone weights missing)"
    ball_line = ""
    if "ball_kept" in extra:
        kept = extra["ball_kept"]
        share = 100 * kept["within_tol"] / max(1, kept["frames"])
        ball_line = f"  ball kept      {kept['within_tol']}/{kept['frames']} frames with a ball ({share:.1f}%, within {BALL_TOL_PX:g} px)\n"
    object_lines = "".join(
        f"  {name} kept  {k['kept']}/{k['frames']} frames showing it ({100 * k['kept'] / max(1, k['frames']):.1f}%, within {k['tol_px']:g} px)\n"
        for name, k in extra["objects_kept"].items()
    )
    print(
        f"{report.frames} frames from {args.data} ({args.split})\n"
        f"  PSNR RGB       {report.psnr_rgb:6.2f} dB\n"
        f"  PSNR gray84    {report.psnr_gray84:6.2f} dB\n"
        f"  SSIM           {report.ssim:6.4f}\n"
        f"  LPIPS          {lp}\n"
        f"{codes_line}"
        f"{ball_line}"
        f"  detail         {extra['detail_ratio']:.3f} of the real frames' (Laplacian variance)\n"
        f"{object_lines}"
        f"{changes_line}"
        f"wrote summary.json, recon_grid.png, recon.mp4 to {out}"
    )


if __name__ == "__main__":
    main()
