"""ComfyUI progress bar, latent preview and Cancel checks over a search's NFE budget."""
import comfy.model_management as mm
import latent_preview


class Progress:
    """ComfyUI progress bar over the NFE budget with a preview of the best clean estimate; Cancel checks."""

    def __init__(self, model_patcher, budget, preview_every=None):
        self.cb = latent_preview.prepare_callback(model_patcher, budget)
        self.budget, self.last = budget, -1
        self.every = preview_every or max(1, budget // 50)

    def __call__(self, event):
        mm.throw_exception_if_processing_interrupted()
        nfe = int(event["nfe"])
        if nfe - self.last >= self.every or nfe >= self.budget:
            self.last = nfe
            self.cb(nfe - 1, event["best_x0"], None, self.budget)
