"""The words a first-year student may not know, each explained in one plain line, for the pages'
``help=`` tooltips: every page reads a term here, so it is explained the same way everywhere."""

from __future__ import annotations

# term -> one line in plain words (a term is written as the pages write it)
TERMS: dict[str, str] = {
    # what a network computes
    "channel": "One of a layer's outputs: a map of where in the image one learned pattern occurs.",
    "feature map": "What a layer outputs for one image: one map per channel, bright where that channel's "
                   "pattern is.",
    "unit": "One number of a layer's output: one channel at one position of its map.",
    "map position": "One cell of a layer's map (row, column); it looks at one patch of the input image.",
    "mean activation": "A channel's output averaged over its whole map: how strongly its pattern shows up "
                       "anywhere in the image.",
    "min-max scaled": "Stretched so its lowest value gets the darkest colour and its highest the brightest: "
                      "each tile shows its own pattern at full contrast, so two tiles' brightness cannot be "
                      "compared.",
    "penultimate features": "The numbers the network computes just before its last layer turns them into "
                            "class scores: its own description of the image.",
    "d (dimensions)": "How many numbers describe each image: 4096-d means a list of 4,096 numbers.",
    "class score": "The number the last layer gives each class; the largest wins, and softmax turns the "
                   "scores into probabilities.",
    "gradient": "How much an output changes when one input changes a little; |d unit / d pixel| is that "
                "amount for every pixel.",
    # convolution
    "kernel": "A small grid of learned weights that a convolution slides over its input; each output "
              "channel has its own.",
    "stride": "How many pixels the kernel moves between two neighbouring outputs; stride 2 halves the map's "
              "width and height.",
    "padding": "Zeros added around the border so the kernel can also be centred on the edge pixels.",
    "bias": "A learned number added to every sum a kernel makes, shifting its whole output up or down.",
    "normalised": "Pixel values after subtracting the training images' mean colour and dividing by their "
                  "spread, as the network saw them in training.",
    "row-major": "Numbered row by row, left to right, as you read a page.",
    "whitening": "A first layer computed once from the training images' statistics (not learned) that evens "
                 "out their colours and contrasts.",
    "norm": "The overall size of a kernel's weights (square root of the sum of their squares): how strongly "
            "it can respond.",
    # receptive fields
    "receptive field": "The patch of the input image a unit can see: pixels outside it cannot change the "
                       "unit at all.",
    "effective receptive field": "How much each pixel actually changes the unit for this image (its "
                                 "gradient): usually a bright centre much smaller than the whole field.",
    "jump": "How many input pixels apart two neighbouring units of a layer look (the strides below it, "
            "multiplied).",
    # layers, by the names the Model page's table shows
    "Conv2d": "Convolution: slides its kernels over the input, one output channel per kernel.",
    "BatchNorm2d": "Batch normalisation: shifts and rescales each channel to a steady range learned in "
                   "training, which makes training faster.",
    "GELU": "An activation: lets positive values through and squashes negative ones towards zero (a smooth "
            "ReLU).",
    "ReLU": "An activation: keeps positive values and sets negative ones to zero.",
    "MaxPool2d": "Max pooling: keeps the largest value of each small block (here 2 x 2), halving the map's "
                 "width and height.",
    "AdaptiveMaxPool2d": "Global max pooling: keeps each channel's largest value over its whole map.",
    "AdaptiveAvgPool2d": "Global average pooling: keeps each channel's mean over its whole map.",
    "Linear": "Fully connected: every input times its own weight, summed once per output (here the class "
              "scores).",
    "Flatten": "Lays a stack of maps out as one long list of numbers.",
    "Dropout": "In training only, switches random values off, so the network cannot lean on any one.",
    "parameters": "The numbers the network learned in training: its weights and biases.",
    # training and data
    "loss": "How wrong the model's probabilities are on the training images; training makes it smaller.",
    "augmented": "Training images randomly flipped, shifted or recoloured each time they are used, so the "
                 "model cannot just memorise them.",
    "held-out": "Images kept out of training (validation or test), so the model has never seen them.",
    "out-of-sample": "Images the model never trained on; how it does on them is how it will do on new images.",
    "in-sample": "Images the model trained on: it may have memorised them, so they flatter it.",
    "test-time augmentation": "The model also classifies flipped or shifted copies of the image and "
                              "averages its answers.",
    "recall": "The share of a class's images that the model puts in that class.",
    "macro recall": "The share of each class's images recognised, averaged over the classes, so a small "
                    "class counts as much as a large one.",
    # units
    "favourite image": "An image changed step by step, from noise, to make the unit fire as strongly as "
                       "possible; small random shifts, zooms and turns at each step keep it from being noise.",
    "knock-out": "Setting one channel's output to zero and measuring how much worse the model does on each "
                 "class.",
    "probability drop": "How much the probability of the right class falls, on average, when the channel "
                        "is zeroed.",
    # neighbours and mistakes
    "euclidean distance": "The straight-line distance between two lists of numbers, as a ruler would measure "
                          "it (in many dimensions).",
    "cosine distance": "1 minus the cosine of the angle between two lists of numbers: 0 when they point the "
                       "same way, whatever their size.",
    "neighbour purity": "The share of an image's nearest training images that have its class.",
    "projection": "A way to draw many-dimensional points on a flat map: PCA keeps the widest spread, t-SNE "
                  "and UMAP keep each point's near neighbours near.",
    "precision": "Of the images the model put in a class, the share that really are of it.",
    "F1": "One number for precision and recall together (their harmonic mean): high only when both are.",
    "confidence": "The probability the model gives its own answer.",
    "margin": "How far the model's answer is ahead of the right class, in probability: small when it hesitated.",
    "label issue": "The score cleanlab gives of how likely an image's given label is wrong, from the model's "
                   "probabilities on images it never trained on: lowest first.",
    "near-duplicate": "Two images so alike that the network's features barely tell them apart: the same "
                      "frame, a crop or a recoloured copy.",
    "Grad-CAM": "A heat map of where in the image a layer's features raised one class's score.",
    "contrastive map": "Grad-CAM of the difference between two classes' scores: where the image favours the "
                       "model's answer over the right one.",
    "95% interval": "Where the true rate probably lies, given how few images it was measured on (Wilson's "
                    "interval): wide when the images are few.",
    "activation x gradient": "A channel's output times how much the class score changes with it: large when "
                             "the channel is on and the score depends on it.",
}


def explain(*terms: str) -> str:
    """The tooltip for ``terms``: each term in bold with its line, one paragraph each (a
    ``KeyError`` names a term the glossary lacks)."""
    return "\n\n".join(f"**{t}**: {TERMS[t]}" for t in terms)


def layer_types_help(types: list[str]) -> str:
    """The tooltip for the layer types ``types`` (as the Model page's table names them), in
    order, each once; types the glossary lacks are left out."""
    return explain(*dict.fromkeys(t for t in types if t in TERMS))
