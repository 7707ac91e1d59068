"""The stem toolkit: what the stems of every input domain (dct, latent) and task
(classification, detection) share. A stem replaces the first layers of a frozen shared
network (the teacher) with a small network on the codec's domain, trained by distillation.

- images: picture files and the OpenCV-style bilinear resize of icm's pre-processing;
- classifier, detector: the two tasks: the teacher network, its pre-processing, the cut
  tensors a stem replaces, the onnxruntime teacher (and the detector's PyTorch head);
- onnx_torch: the shared classifier's ONNX graph evaluated in PyTorch (the tail a stem
  is trained through);
- blocks: the layers of the stems (inverted residuals, the normalised 1x1/dw/1x1 stem of
  the classifiers), batch-norm folding, multiply-add counts;
- cache: the training caches (numpy memmaps, resumable) written and read;
- trainer: the training loop (resumable, logged, validated), the classifier's feature/KL
  distillation and the detector's feature/head distillation;
- export: stems as ONNX files (folded graph or torch.onnx), checked against PyTorch with
  onnxruntime, and read back.
"""
