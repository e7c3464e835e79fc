"""Score-Entropy Discrete Diffusion (SEDD) core library.

Lou, Meng and Ermon, "Discrete Diffusion Modeling by Estimating the Ratios of the Data
Distribution", arXiv:2310.16834.

Conventions used throughout the package:

- Tokens are integers in ``[0, graph.dim)``. Each position of a sequence diffuses
  independently under a continuous-time Markov chain with rate matrix ``Q`` of shape
  ``(D, D)``, where ``Q[y, x]`` is the rate of jumping from state ``x`` to state ``y``.
  Columns of ``Q`` sum to zero; ``exp(sigma Q)[:, x]`` is the distribution of the noised
  token given the clean token ``x``.
- The absorbing graph adds one mask state at the last index, ``mask_index = num_tokens``,
  so ``D = num_tokens + 1``. The uniform graph has ``D = num_tokens``.
- ``sigma`` is the total noise (integrated rate) at time ``t`` in ``[0, 1]`` and ``dsigma``
  its rate ``d sigma / dt``; a noise schedule returns ``(sigma, dsigma)``.
- ``log_score[..., y]`` is the model's estimate of ``log p_t(y) / p_t(x)`` for the current
  token ``x``; the entry at ``x`` itself is 0. ``score`` is its exponential (the ratios).
- Losses and likelihood bounds are in nats per sequence unless a name says otherwise.
"""

__version__ = "0.1.0"
