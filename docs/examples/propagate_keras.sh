#!/usr/bin/env bash
# env: keras-tensorflow
# Keras ResNet50 at its default init, layer by layer (the numbers of the table in findings/models.md).
# drop: ^(WARNING: All log messages before absl|I0000 )
initspec propagate --model "keras.applications:ResNet50(weights=None, classifier_activation=None)" --input-shape 2,224,224,3
