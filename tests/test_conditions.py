"""The one grammar of conditions (jmvae.conditions): ``sample --given``, ``edit --set``, the explorer."""

from __future__ import annotations

import pytest
import torch

from jmvae import Modality, ModelConfig
from jmvae.conditions import Vocabulary
from jmvae.errors import JMVAEError

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
ATTRIBUTES = ("Male", "Smiling", "Young")


def labels(classes=None) -> Vocabulary:
    modalities = (Modality("image", (4,), "bernoulli"), Modality("label", (10,), "categorical"))
    return Vocabulary(ModelConfig("jmvae-kl", modalities, 2, 8, alpha=0.1), classes)


def faces(likelihood: str = "bernoulli") -> Vocabulary:
    extra = {"mean_activation": "tanh"} if likelihood == "gaussian" else {}
    modalities = (Modality("image", (4,), "gaussian"), Modality("attributes", (3,), likelihood, **extra))
    return Vocabulary(ModelConfig("jmvae-kl", modalities, 2, 8, alpha=0.1), features={"attributes": ATTRIBUTES})


def test_a_label_by_key_bare_index_or_class_name():
    fashion = labels(FASHION)
    assert fashion.parse("label=Sneaker", "--given") == fashion.parse("7", "--given") == fashion.parse("Sneaker", "--given")
    assert fashion.parse("label=7", "--given") == {"label": 7}
    assert labels().parse_all(["label=3"], "--given") == labels().parse_all(["3"], "--given") == {"label": 3}
    torch.testing.assert_close(labels().tensors({"label": 3})["label"], torch.tensor([3]))
    assert labels(tuple(str(i) for i in range(10))).class_names is None  # index-like names are not listed


def test_attributes_by_name_and_the_older_list_mean_the_same():
    vocabulary = faces()
    named = vocabulary.parse("Male=1,Smiling=1", "--given")
    assert named == {"attributes": {"Male": 1, "Smiling": 1}}
    assert vocabulary.parse("attributes=Male,Smiling", "--given") == vocabulary.parse("Male, Smiling", "--given") == named
    assert vocabulary.parse_all(["Male=1", "Smiling=1"], "--given") == named
    assert vocabulary.parse("attributes=", "--given") == {"attributes": {}}  # given, all off
    assert vocabulary.parse("Smiling=0", "--set") == {"attributes": {"Smiling": 0}}  # edit: only what is named
    for likelihood, off in (("bernoulli", 0.0), ("gaussian", -1.0)):
        vector = faces(likelihood).tensors({"attributes": {"Male": 1, "Smiling": 0}})["attributes"]
        torch.testing.assert_close(vector, torch.tensor([[1.0, off, off]]))  # not named: off


@pytest.mark.parametrize("vocabulary, text, message", [
    (labels(), "label=12", "--given label '12': '12' is not a class; give an index 0..9"),
    (labels(FASHION), "label=Shoe", "or a class name (T-shirt/top, Trouser"),
    (labels(), "colour=3", "unknown modality 'colour'; this run's label is 'label'"),
    (labels(), "label", "give it a value, e.g. label=3"),
    (labels(), "label=3,label=4", "label appears twice"),
    (labels(), "image=3", "only a label or attributes"),
    (labels(), " , ", "--given is empty; give e.g. --given label=3"),
    (faces(), "Smile=1", "unknown attribute 'Smile'; the run's attributes are Male, Smiling, Young"),
    (faces(), "attributes=Smile", "unknown attribute 'Smile'"),
    (faces(), "Smiling=yes", "expected ATTRIBUTE=1 or ATTRIBUTE=0"),
    (faces(), "Male=1,attributes=Male", "Male appears twice"),
])
def test_a_bad_condition_says_what_is_wrong_and_what_to_write(vocabulary, text, message):
    with pytest.raises(JMVAEError, match=message.replace("(", r"\(").replace(".", r"\.")):
        vocabulary.parse(text, "--given")


def test_names_are_the_attributes_the_classes_or_the_indices():
    assert faces().names("attributes") == ATTRIBUTES
    assert labels(FASHION).names("label") == FASHION
    assert labels().names("label") == tuple(str(i) for i in range(10))
