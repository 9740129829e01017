#!/usr/bin/env bash
# env: keras-jax
# A Keras application audited from its constructor (weights=None: nothing downloaded).
initspec audit 'keras.applications:MobileNetV2(weights=None)' --max-seeds 2
