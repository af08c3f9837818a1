import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_bnn import heads, models


def test_one_unwrapping_of_a_head_output_for_the_losses_and_the_target_alignment():
    output = heads.NormalHead(1)(tf.zeros([3, 2]))
    dist = heads.distribution_of(output)
    assert isinstance(dist, tfp.distributions.Independent) and dist is output.tensor_distribution
    assert heads.distribution_of(dist) is dist  # a distribution is its own
    assert models._aligned_target(np.ones(3, "float32"), output).shape == (3, 1)
    assert models._aligned_target(np.ones(3, "float32"), tf.zeros([3, 1])).shape == (3,)  # not a head's: as given


def test_a_shared_heads_own_nodes_are_those_of_each_model():
    import tf_keras

    head = heads.CategoricalHead(3)
    flat_input, steps_input = tf_keras.Input((4,)), tf_keras.Input((5, 3))
    flat = tf_keras.Model(flat_input, head(tf_keras.layers.Dense(3)(flat_input)))
    steps = tf_keras.Model(steps_input, head(steps_input))  # the same head over a label per step
    assert [tuple(node.input_shapes) for node in heads._own_nodes(flat, head)] == [(None, 3)]
    assert [tuple(node.input_shapes) for node in heads._own_nodes(steps, head)] == [(None, 5, 3)]
    heads._sync_step_shapes(steps)
    assert head._step_shape == (5,)
    heads._sync_step_shapes(flat)
    assert head._step_shape == ()
