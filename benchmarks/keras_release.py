"""The authors' release's model and pretraining step, stated in Keras (TensorFlow 2), timed as crossl's peer.

Written from ``shared/reference/crossl-method.md`` (no code of the release): per modality a TCN of
three blocks Conv1D ('same') -> LayerNorm (eps 1e-3) -> PReLU (slopes 0) -> Dropout 0.1 with
24/48/96 filters and kernels 24/16/8, conv kernels N(0, 0.05^2) with an L2 penalty 1e-4, global
average pooling; the (B, M, 96) stack masked twice by whole modality rows (keep probability 0.9,
the release's default); the flat MLP aggregator Flatten -> 64 ReLU -> 32 ReLU -> 32 -> LayerNorm;
VICReg 10/10/100 on its output (population variance, covariance over B - 1); Adam 1e-4.

It needs TensorFlow, an optional extra for benchmarking only (``pip install 'crossl[bench-tf]'``,
in an environment of its own: ``python -m venv .venv-tf && .venv-tf/bin/pip install -e '.[bench-tf]'``);
the library and the tests never import it. Two ways to run it:

- alone: ``.venv-tf/bin/python benchmarks/keras_release.py --modalities 128x3,128x3 --batch 256``
  prints the median step and windows/s;
- as a worker of ``benchmarks/release_peer.py --keras-python .venv-tf/bin/python``, which alternates
  one step of each Keras configuration with one step of crossl's, so both meet the same machine state.

The step is one ``tf.function`` (forward, loss, gradients, Adam update) with ``jit_compile`` on
(XLA) or off, and dropout on (as specified) or off (as the release runs its encoders in
pretraining). Masks come from a stateless generator keyed by the step, so the XLA path compiles.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any


def parse_modalities(text: str) -> list[tuple[int, int]]:
    """``"128x3,128x3"`` -> ``[(128, 3), (128, 3)]``: samples x channels per modality."""
    out = []
    for part in text.split(","):
        t, _, c = part.strip().partition("x")
        out.append((int(t), int(c)))
    return out


class KerasRelease:
    """The release's model and one compiled train step for a batch of ``batch`` windows."""

    def __init__(self, modalities: list[tuple[int, int]], batch: int, jit: bool, dropout: bool, threads: int,
                 seed: int = 0) -> None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras
        from keras import layers

        keras.utils.set_random_seed(seed)
        self.tf = tf
        init = keras.initializers.RandomNormal(0.0, 0.05)
        self.encoders = []
        for t, c in modalities:
            inp = keras.Input((t, c))
            x = inp
            for filters, kernel in ((24, 24), (48, 16), (96, 8)):
                x = layers.Conv1D(filters, kernel, padding="same", kernel_initializer=init,
                                  kernel_regularizer=keras.regularizers.L2(1e-4))(x)
                x = layers.LayerNormalization(epsilon=1e-3)(x)
                x = layers.PReLU(alpha_initializer="zeros", shared_axes=[1])(x)
                x = layers.Dropout(0.1)(x)
            self.encoders.append(keras.Model(inp, layers.GlobalAveragePooling1D()(x)))
        m = len(modalities)
        stack = keras.Input((m, 96))
        z = layers.Flatten()(stack)
        z = layers.Dense(64, activation="relu")(z)
        z = layers.Dense(32, activation="relu")(z)
        z = layers.Dense(32)(z)
        self.aggregator = keras.Model(stack, layers.LayerNormalization(epsilon=1e-3)(z))
        self.optimizer = keras.optimizers.Adam(1e-4, epsilon=1e-7)
        self.variables = [v for e in self.encoders for v in e.trainable_variables] + self.aggregator.trainable_variables
        self.optimizer.build(self.variables)
        self.batch, self.m = batch, m
        self.dropout = dropout
        self.step = tf.function(self._step, jit_compile=jit)
        rng = tf.random.Generator.from_seed(seed)
        self.inputs = [rng.normal((batch, t, c)) for t, c in modalities]
        self.counter = tf.Variable(0, dtype=tf.int64)

    def _vicreg(self, za: Any, zb: Any) -> Any:
        tf = self.tf
        b = tf.cast(tf.shape(za)[0], za.dtype)
        d = tf.cast(tf.shape(za)[1], za.dtype)
        invariance = tf.reduce_mean(tf.square(za - zb))
        variance = 0.0
        covariance = 0.0
        for z in (za, zb):
            centred = z - tf.reduce_mean(z, axis=0)
            std = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=0) + 1e-4)
            variance += tf.reduce_mean(tf.nn.relu(1.0 - std)) / 2.0
            cov = tf.matmul(centred, centred, transpose_a=True) / (b - 1.0)
            off = cov - tf.linalg.diag(tf.linalg.diag_part(cov))
            covariance += tf.reduce_sum(tf.square(off)) / d
        return 10.0 * invariance + 10.0 * variance + 100.0 * covariance

    def _step(self, inputs: list[Any]) -> Any:
        tf = self.tf
        self.counter.assign_add(1)
        seed = tf.stack([self.counter, tf.constant(7, tf.int64)])
        with tf.GradientTape() as tape:
            q = tf.stack([enc(x, training=self.dropout) for enc, x in zip(self.encoders, inputs)], axis=1)
            keep_a = tf.cast(tf.random.stateless_uniform((self.batch, self.m, 1), seed) < 0.9, q.dtype)
            keep_b = tf.cast(tf.random.stateless_uniform((self.batch, self.m, 1), seed + 1) < 0.9, q.dtype)
            loss = self._vicreg(self.aggregator(q * keep_a, training=True), self.aggregator(q * keep_b, training=True))
            loss += tf.add_n([tf.reduce_sum(r) for e in self.encoders for r in e.losses])
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return loss

    def timed_step(self) -> float:
        """Seconds of one step, to the loss being available on the host."""
        start = time.perf_counter()
        self.step(self.inputs).numpy()
        return time.perf_counter() - start


def worker() -> None:
    """JSON lines on stdin -> stdout: ``{"build": {...}}`` builds and warms a configuration (replies
    ``{"ready": name}``); ``{"step": name}`` times one step (replies ``{"seconds": s}``)."""
    built: dict[str, KerasRelease] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if "build" in request:
            spec = request["build"]
            model = KerasRelease([tuple(m) for m in spec["modalities"]], spec["batch"], spec["jit"], spec["dropout"],
                                 spec["threads"])
            for _ in range(spec.get("warmup", 2)):
                model.timed_step()
            built[spec["name"]] = model
            reply: dict[str, Any] = {"ready": spec["name"]}
        else:
            reply = {"seconds": built[request["step"]].timed_step()}
        print(json.dumps(reply), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modalities", default="128x3,128x3", help="samples x channels per modality (HAPT: 128x3,128x3)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-jit", action="store_true", help="run the step without XLA")
    parser.add_argument("--no-dropout", action="store_true", help="dropout off in the encoders (as the release runs)")
    parser.add_argument("--worker", action="store_true", help="serve pretrain_speed.py --keras (JSON lines on stdin)")
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    model = KerasRelease(parse_modalities(args.modalities), args.batch, not args.no_jit, not args.no_dropout,
                         args.threads)
    for _ in range(args.warmup):
        model.timed_step()
    seconds = statistics.median(model.timed_step() for _ in range(args.repeats))
    print(f"keras release step, batch {args.batch}, jit {not args.no_jit}, dropout {not args.no_dropout}: "
          f"{1e3 * seconds:.1f} ms, {args.batch / seconds:,.0f} windows/s")


if __name__ == "__main__":
    main()
