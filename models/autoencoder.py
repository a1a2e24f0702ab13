"""Convolutional autoencoder over sliding windows of sensor rows (a scikit-learn outlier detector).

Each row is judged by how well a small 1-D convolutional autoencoder, trained on fault-free rows,
reconstructs the window of the ``window`` consecutive rows that ends at it. The network learns
the joint shape of the sensors over a few seconds (their levels, their correlations and their
short-term dynamics); a fault that changes any of these (a leak, rotor imbalance, cavitation, a
closing valve, hot water) raises the reconstruction error. The score is causal: the window ending
at row ``t`` holds rows ``t - window + 1 .. t``, and the first rows of a series are padded with
copies of its first row.

Training: sensors are standardised on the training rows; the last ``validation_fraction`` of the
windows (in time order) are held out; Adam minimises the mean squared error on the rest and
training stops when the validation error has not improved for ``patience`` epochs, keeping the
best weights. The alarm threshold is a quantile of the windows' errors, the larger of the
quantiles on the trained-on and on the held-out windows (a short held-out stretch may be quiet by
chance; trained-on windows may be fitted too closely).

Reproducible: ``random_state`` seeds numpy and torch, batches are drawn from a seeded generator,
torch runs on the CPU with ``n_threads`` threads (restored afterwards). Torch is imported only
inside `fit` and the scoring methods; the fitted network is kept as a dict of numpy arrays and
rebuilt when needed, so the estimator pickles (and cloudpickles) without torch objects.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> det = WindowAutoencoder(window=8, epochs=5, random_state=0).fit(X)
    >>> det.score_samples(X[:20]).shape
    (20,)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from pumptwin.models.detectors import ThresholdAlarmMixin, causal_mean
from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    import torch


class AutoencoderError(PumptwinError, ValueError):
    """Bad parameters or input for `WindowAutoencoder`."""


def sliding_windows(Z: np.ndarray, window: int) -> np.ndarray:
    """Causal windows of ``window`` rows ending at every row, the start padded with the first row.

    Args:
        Z: Rows in time order, shape (n_samples, n_features).
        window: Rows per window.

    Returns:
        Array of shape (n_samples, window, n_features); entry ``t`` holds rows ``t - window + 1 .. t``.
    """
    padded = np.concatenate([np.repeat(Z[:1], window - 1, axis=0), Z], axis=0)
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (n, features, window)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


@contextmanager
def _torch_threads(n_threads: int) -> Iterator[Any]:
    """Import torch, run with ``n_threads`` CPU threads, restore the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield torch
    finally:
        torch.set_num_threads(previous)


def build_network(n_features: int, window: int, hidden: int, latent: int) -> torch.nn.Module:
    """The autoencoder: two 1-D convolutions, a linear bottleneck of ``latent`` units, and back.

    Args:
        n_features: Sensors (input channels).
        window: Rows per window (sequence length).
        hidden: Channels of the convolutional layers.
        latent: Width of the bottleneck.

    Returns:
        A module mapping (batch, n_features, window) to the same shape.
    """
    from torch import nn

    return nn.Sequential(
        nn.Conv1d(n_features, hidden, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv1d(hidden, hidden, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(hidden * window, latent),
        nn.ReLU(),
        nn.Linear(latent, hidden * window),
        nn.ReLU(),
        nn.Unflatten(1, (hidden, window)),
        nn.Conv1d(hidden, n_features, kernel_size=3, padding=1),
    )


def train_step(
    model: torch.nn.Module,
    batches: list[torch.Tensor],
    optimizer: torch.optim.Optimizer,
) -> float:
    """One epoch of reconstruction training over ``batches``; returns the mean batch loss."""
    model.train()
    total = 0.0
    for xb in batches:
        optimizer.zero_grad()
        loss = ((model(xb) - xb) ** 2).mean()
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
    return total / max(len(batches), 1)


def window_errors(model: torch.nn.Module, windows: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Mean squared reconstruction error of every window (shape (n, features, window)), no gradients."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            xb = windows[start : start + batch_size]
            out.append(((model(xb) - xb) ** 2).mean(dim=(1, 2)).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


class WindowAutoencoder(ThresholdAlarmMixin, OutlierMixin, BaseEstimator):
    """Reconstruction-error detector: a 1-D convolutional autoencoder over causal row windows.

    Scores follow `models.detectors.PcaT2QDetector`: ``score_samples`` is minus the (smoothed)
    reconstruction error over its threshold, ``decision_function = score_samples + 1`` is negative
    beyond the threshold, and ``predict`` gives -1 where the threshold is crossed for at least
    ``min_run`` rows.

    Args:
        window: Rows per window (the window ending at each row is scored).
        hidden: Channels of the convolutional layers.
        latent: Width of the bottleneck.
        epochs: Most training epochs.
        batch_size: Windows per training batch.
        learning_rate: Adam step size.
        patience: Epochs without improvement of the validation error before training stops.
        validation_fraction: Last fraction of the training windows held out for early stopping
            and threshold calibration.
        quantile: Quantile of the (smoothed) training errors taken as the threshold, the larger
            of its values on the trained-on and on the held-out windows.
        margin: Factor on the threshold.
        score_smooth: Rows of the causal moving average applied to the errors.
        min_run: Rows an alarm must persist to be kept.
        scale_floor: Lower bound on each sensor's scale as a fraction of its mean absolute
            training level (see `PcaT2QDetector`).
        random_state: Seed of numpy and torch.
        n_threads: CPU threads torch may use.

    Attributes:
        mean_: Per-sensor training mean.
        scale_: Per-sensor training scale (floored standard deviation).
        state_dict_: Trained weights as numpy arrays.
        threshold_: Threshold of the smoothed reconstruction error.
        n_epochs_: Epochs run.
        best_epoch_: Epoch (1-based) whose weights are kept.
        validation_loss_: Validation error per epoch.
        n_features_in_: Number of sensors seen in `fit`.
        offset_: Always -1 (a ratio of 1 is the boundary).
    """

    def __init__(
        self,
        window: int = 16,
        hidden: int = 16,
        latent: int = 8,
        epochs: int = 60,
        batch_size: int = 32,
        learning_rate: float = 3e-3,
        patience: int = 8,
        validation_fraction: float = 0.25,
        quantile: float = 0.99,
        margin: float = 1.0,
        score_smooth: int = 1,
        min_run: int = 1,
        scale_floor: float = 0.0,
        random_state: int = 0,
        n_threads: int = 1,
    ) -> None:
        self.window = window
        self.hidden = hidden
        self.latent = latent
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.quantile = quantile
        self.margin = margin
        self.score_smooth = score_smooth
        self.min_run = min_run
        self.scale_floor = scale_floor
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        ints = {
            "window": self.window,
            "hidden": self.hidden,
            "latent": self.latent,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "patience": self.patience,
            "score_smooth": self.score_smooth,
            "min_run": self.min_run,
            "n_threads": self.n_threads,
        }
        for name, value in ints.items():
            if int(value) != value or value < 1:
                raise AutoencoderError(f"{name}={value} must be an integer of at least 1")
        if not 0 < self.validation_fraction < 1:
            raise AutoencoderError(f"validation_fraction={self.validation_fraction} must lie in (0, 1)")
        if not 0 < self.quantile <= 1:
            raise AutoencoderError(f"quantile={self.quantile} must lie in (0, 1]")
        if self.learning_rate <= 0 or self.margin <= 0 or self.scale_floor < 0:
            raise AutoencoderError(
                f"learning_rate={self.learning_rate} and margin={self.margin} must be positive,"
                f" scale_floor={self.scale_floor} non-negative"
            )

    def _min_samples(self) -> int:
        """Fewest training rows: at least two windows to train on and two to validate."""
        n_val = 2
        return max(int(np.ceil(n_val / self.validation_fraction)), n_val + 2)

    def fit(self, X: ArrayLike, y: object = None) -> WindowAutoencoder:
        """Train the autoencoder on fault-free rows ``X`` (time order) and calibrate the threshold.

        Args:
            X: Training rows, shape (n_samples, n_features).
            y: Ignored.

        Returns:
            The fitted detector.

        Raises:
            AutoencoderError: On bad parameters; ValueError on NaN, infinite values or too few rows.
        """
        self._check_params()
        X = np.asarray(validate_data(self, X, dtype=np.float64, ensure_min_samples=self._min_samples()))
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0, ddof=1)
        self.scale_ = np.maximum(np.maximum(std, self.scale_floor * np.abs(self.mean_)), 1e-12)
        Z = (X - self.mean_) / self.scale_
        windows = sliding_windows(Z, self.window).transpose(0, 2, 1).astype(np.float32)
        n_val = max(2, int(round(self.validation_fraction * len(windows))))
        rng = np.random.default_rng(self.random_state)
        with _torch_threads(self.n_threads) as torch:
            torch.manual_seed(self.random_state)
            train = torch.from_numpy(np.array(windows[:-n_val]))
            val = torch.from_numpy(np.array(windows[-n_val:]))
            model = build_network(self.n_features_in_, self.window, self.hidden, self.latent)
            optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
            best, best_state, best_epoch, history = np.inf, None, 0, []
            for epoch in range(1, self.epochs + 1):
                order = torch.from_numpy(rng.permutation(len(train)))
                batches = [train[order[i : i + self.batch_size]] for i in range(0, len(train), self.batch_size)]
                train_step(model, batches, optimizer)
                loss = float(window_errors(model, val).mean())
                history.append(loss)
                if loss < best:
                    best, best_epoch = loss, epoch
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                elif epoch - best_epoch >= self.patience:
                    break
            if best_state is None:
                raise AutoencoderError(f"training diverged: validation losses {history}")
            model.load_state_dict(best_state)
            self.state_dict_ = {k: v.numpy().copy() for k, v in best_state.items()}
            errors = window_errors(model, torch.from_numpy(np.array(windows)))
        self.n_epochs_ = len(history)
        self.best_epoch_ = best_epoch
        self.validation_loss_ = np.asarray(history)
        smoothed = causal_mean(errors, self.score_smooth)
        # The larger of the quantiles on the trained-on and the held-out windows: the first guards
        # against a short held-out stretch that happens to be quiet, the second against overfitting.
        level = max(np.quantile(smoothed[:-n_val], self.quantile), np.quantile(smoothed[-n_val:], self.quantile))
        self.threshold_ = max(float(level), 1e-12) * self.margin
        self.offset_ = -1.0
        return self

    def reconstruction_error(self, X: ArrayLike) -> np.ndarray:
        """Mean squared reconstruction error (standardised units) of the window ending at each row.

        Args:
            X: Rows in time order, shape (n_samples, n_features).

        Returns:
            One error per row (not smoothed).
        """
        check_is_fitted(self)
        X = np.asarray(validate_data(self, X, dtype=np.float64, reset=False))
        Z = (X - self.mean_) / self.scale_
        windows = sliding_windows(Z, self.window).transpose(0, 2, 1).astype(np.float32)
        with _torch_threads(self.n_threads) as torch:
            model = build_network(self.n_features_in_, self.window, self.hidden, self.latent)
            model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state_dict_.items()})
            return window_errors(model, torch.from_numpy(np.array(windows)))

    def _ratio(self, X: ArrayLike) -> np.ndarray:
        return causal_mean(self.reconstruction_error(X), self.score_smooth) / self.threshold_

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Normality of each row: minus the smoothed reconstruction error over its threshold.

        Args:
            X: Rows in time order.

        Returns:
            Scores, lower is more abnormal; below -1 is beyond the threshold.
        """
        return -self._ratio(X)
