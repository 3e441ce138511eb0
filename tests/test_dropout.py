"""The CPU dropout's cheaper mask: the same distribution as torch's, seeded the same way, the same
gradient, and swapped in for every plain nn.Dropout that training meets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tunebench.training.dropout import CheapDropout, cheap_dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mask_drops_p_of_the_elements_and_scales_the_rest_to_keep_the_mean(p):
    torch.manual_seed(0)
    keep, scale = keep_mask(torch.Size([1000, 1001]), p, torch.device("cpu"))
    assert keep.dtype == torch.uint8 and keep.shape == (1000, 1001)
    assert set(keep.unique().tolist()) == {0, 1}
    dropped = 1 - keep.float().mean().item()
    assert abs(dropped - p) < 4 * (p * (1 - p) / keep.numel()) ** 0.5 + 1 / 65536
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)
    assert keep.float().mean().item() * scale == pytest.approx(1.0, abs=5e-3)


def test_every_lane_of_the_random_words_is_uniform():
    """Four 16-bit lanes per 64-bit draw: none may be biased (torch's plain `random_()` leaves the top bit 0)."""
    torch.manual_seed(0)
    keep, _ = keep_mask(torch.Size([400_000]), 0.5, torch.device("cpu"))
    for lane in range(4):
        assert keep.view(-1, 4)[:, lane].float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_the_same_seed_gives_the_same_masks_and_the_next_call_a_new_one():
    torch.manual_seed(3)
    a, _ = keep_mask(torch.Size([64, 32]), 0.2, torch.device("cpu"))
    b, _ = keep_mask(torch.Size([64, 32]), 0.2, torch.device("cpu"))
    torch.manual_seed(3)
    again, _ = keep_mask(torch.Size([64, 32]), 0.2, torch.device("cpu"))
    assert torch.equal(a, again) and not torch.equal(a, b)


def test_the_gradient_is_the_mask_times_the_scale():
    x = torch.randn(8, 16, requires_grad=True)
    torch.manual_seed(1)
    y = dropout(x, 0.3)
    y.sum().backward()
    kept, scale = y.detach() != 0, 65536 / (65536 - round(0.3 * 65536))
    torch.testing.assert_close(y.detach(), x.detach() * kept * scale)
    torch.testing.assert_close(x.grad, kept.float() * scale)


def test_evaluation_and_p_zero_leave_the_input_as_it_is():
    x = torch.randn(4, 4)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    layer = CheapDropout(0.5).eval()
    assert layer(x) is x


def test_every_plain_dropout_is_swapped_and_the_state_dict_is_unchanged():
    model = nn.Sequential(
        nn.Linear(4, 4), nn.Dropout(0.1), nn.ModuleDict({"a": nn.Dropout(0.2)}), nn.Dropout(0.3, inplace=True)
    )
    keys = list(model.state_dict())
    assert cheap_dropout(model) == 2
    assert isinstance(model[1], CheapDropout) and model[1].p == 0.1
    assert isinstance(model[2]["a"], CheapDropout) and model[2]["a"].p == 0.2
    assert type(model[3]) is nn.Dropout  # in place: left to torch
    assert list(model.state_dict()) == keys
    assert cheap_dropout(model) == 0


def test_a_uint8_mask_gives_the_values_a_bool_mask_gives():
    """The mask is uint8 for speed (a vectorised product); bf16 and fp32 inputs, negative zeros included."""
    torch.manual_seed(0)
    keep, scale = keep_mask(torch.Size([64, 48]), 0.3, torch.device("cpu"))
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(64, 48).to(dtype)
        fast, plain = (x * keep).mul_(scale), x * keep.bool() * scale
        assert torch.equal(fast, plain) and torch.equal(fast.signbit(), plain.signbit())
