# Rebuild the bundled models in models/ from fixed seeds.
#
#   make -f models.mk PY=.venv/bin/python            # all four, one after another
#   make -f models.mk PY=.venv/bin/python -j2        # two at a time (2 cores)
#   make -f models.mk PY=.venv/bin/python cgan       # just one
#   make -f models.mk PY=.venv/bin/python eval       # judge the bundled models
#
# Each model is `gan-train fit` into $(RUNS)/NAME, then `gan-train export` to
# $(MODELS)/NAME/1. Runs are seeded and use $(THREADS) CPU threads each; with
# the same THREADS on the same kind of CPU a rebuild is bit-identical (other
# thread counts or CPUs change float rounding, so the models differ slightly
# but train the same way). The classifier that judges them is shipped in
# training/gan_training/assets/; `classifier` retrains it from its seed.

PY ?= .venv/bin/python
MODELS ?= models
RUNS ?= runs/bundled
THREADS ?= 1
DEVICE ?= cpu
VERSION ?= 1

TRAIN := $(PY) -m gan_training.cli
FIT := $(TRAIN) fit --dataset mnist --device $(DEVICE) --threads $(THREADS) --no-progress
EXPORT = $(TRAIN) export $(RUNS)/$@ --repo $(MODELS) --name $@ --version $(VERSION) --overwrite

# Every model averages its generator's weights over training (--g-ema).
EMA := --g-ema 0.999

.PHONY: all dcgan cgan infogan infogan-unsupervised eval classifier

all: dcgan cgan infogan infogan-unsupervised

dcgan:
	rm -rf $(RUNS)/$@
	$(FIT) --variant dcgan --seed 1 --epochs 30 $(EMA) --out $(RUNS)/$@
	$(EXPORT)

cgan:
	rm -rf $(RUNS)/$@
	$(FIT) --variant cgan --seed 1 --epochs 40 $(EMA) --out $(RUNS)/$@
	$(EXPORT)

# Semi-supervised InfoGAN (Spurr et al., 2017): Q's categorical head learns
# the digit of a labelled share of the real images (shifted/rotated a little),
# and learns it from those alone (--q-fake-cat-weight 0), so category k draws
# digit k; the continuous codes stay unsupervised.
infogan:
	rm -rf $(RUNS)/$@
	$(FIT) --variant infogan --seed 1 --epochs 50 $(EMA) \
	  --labelled-fraction 0.2 --q-fake-cat-weight 0 --out $(RUNS)/$@
	$(EXPORT)

# Plain InfoGAN: no labels; category -> digit found by Hungarian matching.
infogan-unsupervised:
	rm -rf $(RUNS)/$@
	$(FIT) --variant infogan --seed 1 --epochs 40 $(EMA) \
	  --width 64 --q-head-only --lr-q 1e-3 --out $(RUNS)/$@
	$(EXPORT)

# The bar for the bundled infogan: >= 97% overall, >= 90% for the worst digit.
eval:
	$(TRAIN) eval $(MODELS)/dcgan/$(VERSION)
	$(TRAIN) eval $(MODELS)/cgan/$(VERSION)
	$(TRAIN) eval $(MODELS)/infogan-unsupervised/$(VERSION)
	$(TRAIN) eval $(MODELS)/infogan/$(VERSION) --min-accuracy 0.97 --min-worst 0.90

classifier:
	$(TRAIN) classifier --seed 0 --epochs 30 --threads 1 \
	  --out training/gan_training/assets/mnist_classifier.pt
