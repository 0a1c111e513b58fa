"""Mono diarization: speech spans -> speaker embeddings on short windows -> clustering -> refined speaker turns.

1. Coarse and fine windows inside each speech span are embedded (sizes per encoder, see ``PROFILES``:
   resemblyzer 1.5 s / 0.75 s hop and 1.0 s / 0.5 s hop; the ONNX encoder 1.6 s / 0.8 s and 0.8 s / 0.4 s).
2. How many voices: average-linkage clustering (cosine) of the coarse windows, cut at the encoder's
   ``merge_distance``, or the fixed ``speakers``; always within ``min_speakers``/``max_speakers``.
3. Who is who: Ward clustering of the fine windows into that many groups, then k-means passes; centroids.
4. Labels on a 0.1 s grid over a turn-level speech map (``speech_regions``): each point is scored against each
   centroid by the windows covering it, and a Viterbi pass with a switch penalty picks the labels, so turns
   change where the voice changes, not on the window grid.
5. Spans are cut where the label changes and a speaker's short pauses are bridged (``turns``). Points whose
   best two speakers score nearly the same while both match well are reported as possible overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from callscribe.model import Span
from callscribe.speakers.embed import MEL_HOP, SAMPLE_RATE, SpeakerEncoder, get_encoder, normalize_level

log = logging.getLogger("callscribe")

FRAMES_PER_S = SAMPLE_RATE // MEL_HOP  # mel frames per second (100)
MIN_WIN_S = 0.5  # shorter speech is labelled from its neighbours' voices, never embedded alone
GRID_S = 0.1
FINE_WEIGHT = 0.5  # weight of a fine window's vote against a coarse one's


@dataclass(frozen=True)
class Profile:
    """Window sizes and thresholds, calibrated per encoder (their embeddings spread differently).

    coarse windows count the voices (``merge_distance``: average-linkage cosine distance between clusters above
    which they are different voices) and vote in refinement; fine windows are clustered and vote too.
    ``switch_penalty``: Viterbi cost (summed similarity units) of a speaker change inside a span.
    ``overlap_margin``/``overlap_min_sim``: a grid point whose best two voices score within the margin, both at
    least ``overlap_min_sim``, may hold two voices.
    """

    coarse_win_s: float
    coarse_hop_s: float
    fine_win_s: float
    fine_hop_s: float
    merge_distance: float
    switch_penalty: float
    overlap_margin: float
    overlap_min_sim: float


PROFILES = {
    # Measured on evalset-dev: one voice (librispeech, aishell, jfk, podcasts...) never has a final merge above
    # 0.28; two or more voices (AMI meetings, synthetic two-voice calls) have their first split at 0.38 or more.
    "resemblyzer": Profile(1.5, 0.75, 1.0, 0.5, 0.35, 0.5, 0.03, 0.75),
    # The ONNX model takes 0.8 s; a 1.6 s coarse window is the mean of three 0.8 s pieces of the fine grid.
    # Its distances spread wider: one voice's last merge is at most 0.34 on evalset-dev, two voices split at
    # 0.53 or more (AMI, mixdowns of evalset-dev voices, the example calls), and the far-field AMI two-speaker
    # clip has a spurious third split at 0.46; 0.48 keeps it at two. Its similarities run lower, so possible
    # overlap is flagged from 0.6 (0.75 flagged none of the AMI overlap; 0.6 with a 0.05 margin finds 1.3 s on
    # the four-speaker clip, 1.0 s of it real, and the example call's 0.4 s overlap).
    "onnx": Profile(1.6, 0.8, 0.8, 0.4, 0.48, 0.5, 0.05, 0.6),
}
MIN_CLUSTER_SHARE = 0.05  # clusters under this share of windows are merged into their nearest neighbour
DEFAULT_MAX_SPEAKERS = 8
KMEANS_PASSES = 5
OVERLAP_MIN_S = 0.3
TURN_GAP_S = 2.0  # pauses a speaker turn may hold (see turns())
# Turn-level speech map for diarization, from the same VAD model: a lower start threshold and a little padding
# recover the quiet, far-field ends of words that the ASR map (threshold 0.5) leaves out; short pauses inside
# one speaker's turn are then bridged (TURN_GAP_S), as turn-level references (AMI, call RTTMs) count them.
REGION_THRESHOLD = 0.35
REGION_MIN_SILENCE_S = 0.6
REGION_PAD_S = 0.1


@dataclass
class Diarization:
    """Speech cut at speaker changes: ``spans[i]`` is said by ``labels[i]`` (``S1``, ``S2``... by first turn)."""

    spans: list[Span]
    labels: list[str]
    speakers: int
    overlaps: list[Span] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def talk_time(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for span, label in zip(self.spans, self.labels, strict=True):
            out[label] = out.get(label, 0.0) + span.duration
        return out


@dataclass
class _Window:
    start: float
    end: float
    coarse: bool


def _windows(span: Span, win_s: float, hop_s: float, coarse: bool) -> list[_Window]:
    if span.duration < MIN_WIN_S:
        return []
    if span.duration <= win_s:
        return [_Window(span.start, span.end, coarse)]
    n = int(np.ceil((span.duration - win_s) / hop_s)) + 1
    starts = [span.start + i * hop_s for i in range(n - 1)] + [span.end - win_s]
    return [_Window(s, s + win_s, coarse) for s in starts]


def _count(emb: np.ndarray, lo: int, hi: int, merge_distance: float) -> int:
    """How many voices: average-linkage (cosine) merges of coarse windows above ``merge_distance``, plus one."""
    from scipy.cluster.hierarchy import linkage

    if len(emb) < 2:
        return lo
    tree = linkage(emb.astype(np.float64), method="average", metric="cosine")
    return min(max(int(np.sum(tree[:, 2] > merge_distance)) + 1, lo), hi)


def _cluster(emb: np.ndarray, k: int, fixed: bool, lo: int) -> np.ndarray:
    """Ward clustering of unit embeddings into ``k`` groups, then k-means passes; a label per row (0..k-1)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(emb)
    if n < 2 or k <= 1:
        return np.zeros(n, dtype=int)
    tree = linkage(emb.astype(np.float64), method="ward")
    labels = _relabel(fcluster(tree, min(k, n), criterion="maxclust"))
    if not fixed:
        labels = _merge_small(emb, labels, keep_at_least=lo)
    return _kmeans(emb, labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(int)


def _centroids(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    cents = np.stack([emb[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    return cents / np.linalg.norm(cents, axis=1, keepdims=True).clip(1e-9)


def _merge_small(emb: np.ndarray, labels: np.ndarray, keep_at_least: int) -> np.ndarray:
    labels = _relabel(labels)
    while True:
        counts = np.bincount(labels)
        k = len(counts)
        small = int(np.argmin(counts))
        if k <= keep_at_least or counts[small] >= max(2, MIN_CLUSTER_SHARE * len(labels)):
            return labels
        cents = _centroids(emb, labels)
        sims = cents @ cents[small]
        sims[small] = -np.inf
        labels = _relabel(np.where(labels == small, int(np.argmax(sims)), labels))


def _kmeans(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    k = labels.max() + 1
    for _ in range(KMEANS_PASSES):
        new = np.argmax(emb @ _centroids(emb, labels).T, axis=1)
        if len(set(new.tolist())) < k or np.array_equal(new, labels):
            break
        labels = new
    return labels


def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best label path through ``scores`` (points x speakers) with a cost per change."""
    n, k = scores.shape
    total = scores[0].copy()
    back = np.zeros((n, k), dtype=int)
    for t in range(1, n):
        stay = total
        best_prev = int(np.argmax(total))
        switch = total[best_prev] - penalty
        choose_switch = switch > stay
        back[t] = np.where(choose_switch, best_prev, np.arange(k))
        total = np.maximum(stay, switch) + scores[t]
    path = np.zeros(n, dtype=int)
    path[-1] = int(np.argmax(total))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def diarize(
    wav: np.ndarray,
    speech: list[Span],
    *,
    speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    encoder: SpeakerEncoder | None = None,
    profile: Profile | None = None,
) -> Diarization:
    """Who spoke when in one 16 kHz mono signal, given its speech spans."""
    speech = sorted(s for s in speech if s.duration > 0)
    lo = max(1, min_speakers or 1)
    hi = max(lo, max_speakers or DEFAULT_MAX_SPEAKERS)
    if speakers is not None:
        lo = hi = speakers
    if not speech:
        return Diarization([], [], 0, notes=["no speech to diarize"])
    encoder = encoder or get_encoder()
    profile = profile or PROFILES[encoder.name]
    wav = level_speech(wav, speech)
    windows, emb = embed_windows(wav, speech, encoder, profile)
    if not windows:
        note = "speech too short to tell voices apart"
        return Diarization(list(speech), ["S1"] * len(speech), 1, notes=[note])
    coarse = np.array([w.coarse for w in windows])
    if coarse.sum() == 0:
        coarse[:] = True
    k = speakers if speakers is not None else _count(emb[coarse], lo, hi, profile.merge_distance)
    part = ~coarse if (~coarse).sum() >= 2 else coarse
    cl = _cluster(emb[part], k, speakers is not None, lo)
    cents = _centroids(emb[part], cl)
    sims = emb @ cents.T  # windows x speakers
    result = _refine(speech_regions(wav, speech), windows, sims, len(cents), profile)
    joined = turns(result.spans, result.labels)
    result.spans, result.labels = [s for s, _ in joined], [lab for _, lab in joined]
    return result


def level_speech(wav: np.ndarray, speech: list[Span]) -> np.ndarray:
    """``wav`` scaled so its speech sits at the encoders' level (see ``normalize_level``)."""
    mask = np.zeros(len(wav), dtype=bool)
    for s in speech:
        mask[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)] = True
    return normalize_level(wav, mask)


def embed_windows(
    wav: np.ndarray, speech: list[Span], encoder: SpeakerEncoder, profile: Profile
) -> tuple[list[_Window], np.ndarray]:
    """The coarse and fine windows inside the speech spans, and their embeddings."""
    windows: list[_Window] = []
    mels: list[np.ndarray] = []
    for span in speech:
        a = int(span.start * SAMPLE_RATE)
        mel = encoder.mel(wav[a : int(span.end * SAMPLE_RATE)])
        spans_windows = _windows(span, profile.coarse_win_s, profile.coarse_hop_s, True)
        for w in spans_windows + _windows(span, profile.fine_win_s, profile.fine_hop_s, False):
            i = round((w.start - span.start) * FRAMES_PER_S)
            j = min(len(mel), round((w.end - span.start) * FRAMES_PER_S))
            if j - i >= MIN_WIN_S * FRAMES_PER_S:
                windows.append(w)
                mels.append(mel[i:j])
    return windows, (encoder.embed_mels(mels) if mels else np.zeros((0, 0), dtype=np.float32))


def coarse_embeddings(wav: np.ndarray, speech: list[Span], encoder: SpeakerEncoder, profile: Profile) -> np.ndarray:
    """Embeddings of the coarse windows (the ones voices are counted on), for calibrating ``merge_distance``."""
    speech = sorted(s for s in speech if s.duration > 0)
    windows, emb = embed_windows(level_speech(wav, speech), speech, encoder, profile)
    return emb[[w.coarse for w in windows]] if windows else emb


def speech_regions(wav: np.ndarray, speech: list[Span]) -> list[Span]:
    """Where diarization labels speech: ``speech`` joined with a looser VAD map of ``wav`` (see REGION_*).

    Loose spans holding none of ``speech`` are kept: on far-field audio they are quiet speech the ASR map missed.
    """
    from callscribe.audio.vad import SpeechMap

    vad = SpeechMap(1, REGION_THRESHOLD, REGION_MIN_SILENCE_S, speech_pad_s=REGION_PAD_S)
    vad(wav[None, :])
    merged: list[Span] = []
    for span in sorted([*speech, *vad.spans()[0]]):
        if merged and span.start <= merged[-1].end:
            merged[-1] = merged[-1].union(span)
        else:
            merged.append(span)
    return merged


def _refine(speech: list[Span], windows: list[_Window], sims: np.ndarray, k: int, profile: Profile) -> Diarization:
    starts = np.array([w.start for w in windows])
    ends = np.array([w.end for w in windows])
    weights = np.array([1.0 if w.coarse else FINE_WEIGHT for w in windows])
    spans: list[Span] = []
    labels: list[int] = []
    overlaps: list[Span] = []
    for span in speech:
        n = max(1, int(np.ceil(span.duration / GRID_S)))
        t = span.start + (np.arange(n) + 0.5) * span.duration / n
        cover = (starts[None, :] <= t[:, None]) & (ends[None, :] >= t[:, None])
        if not cover.any():
            # too short to embed: nearest windows in time vote, the closest counting most
            dist = np.minimum(np.abs(starts - span.start), np.abs(ends - span.end))
            near = np.argsort(dist)[:4]
            score = (sims[near] / (1.0 + dist[near, None])).sum(axis=0)
            spans.append(span)
            labels.append(int(np.argmax(score)))
            continue
        w = cover * weights[None, :]
        denom = w.sum(axis=1, keepdims=True)
        scores = (w @ sims) / np.where(denom > 0, denom, 1.0)
        # points no window covers (span edges) take the nearest covered point's scores
        covered = np.flatnonzero(denom[:, 0] > 0)
        if len(covered) < n:
            nearest = covered[np.abs(np.arange(n)[:, None] - covered[None, :]).argmin(axis=1)]
            scores = scores[nearest]
        path = _viterbi(scores, profile.switch_penalty)
        edges = np.linspace(span.start, span.end, n + 1)
        cut = 0
        for i in range(1, n + 1):
            if i == n or path[i] != path[cut]:
                spans.append(Span(round(float(edges[cut]), 3), round(float(edges[i]), 3)))
                labels.append(int(path[cut]))
                cut = i
        if k > 1:
            top2 = np.sort(scores, axis=1)[:, -2:]
            amb = (top2[:, 1] - top2[:, 0] < profile.overlap_margin) & (top2[:, 0] >= profile.overlap_min_sim)
            overlaps.extend(_runs(amb, edges))
    names = _names(labels)
    result = Diarization(spans, [names[x] for x in labels], len(set(labels)), overlaps=overlaps)
    log.debug("diarization: %d speakers, %d turns", result.speakers, len(spans))
    return result


def _runs(flags: np.ndarray, edges: np.ndarray) -> list[Span]:
    out: list[Span] = []
    i = 0
    while i < len(flags):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j < len(flags) and flags[j]:
            j += 1
        if edges[j] - edges[i] >= OVERLAP_MIN_S:
            out.append(Span(round(float(edges[i]), 3), round(float(edges[j]), 3)))
        i = j
    return out


def _names(labels: list[int]) -> dict[int, str]:
    """S1, S2... in order of first appearance."""
    names: dict[int, str] = {}
    for x in labels:
        if x not in names:
            names[x] = f"S{len(names) + 1}"
    return names


def turns(spans: list[Span], labels: list[str], max_gap_s: float = TURN_GAP_S) -> list[tuple[Span, str]]:
    """Speaker turns: consecutive spans of one speaker joined across pauses up to ``max_gap_s``.

    Turn-level references (AMI, call-centre RTTMs) count a speaker's short pauses as their speech.
    """
    out: list[tuple[Span, str]] = []
    for span, label in sorted(zip(spans, labels, strict=True), key=lambda x: x[0].start):
        if out and out[-1][1] == label and span.start - out[-1][0].end <= max_gap_s:
            out[-1] = (out[-1][0].union(span), label)
        else:
            out.append((span, label))
    return out
