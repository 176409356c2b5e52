"""API-prompt pieces shared by the server tests that search on the shipped playground model."""


def sampler_nodes(sampler_inputs, steps=4, grid="paper"):
    """Nodes "5"–"11": FlowSearch Sampler (`sampler_inputs`) in SamplerCustomAdvanced with BasicGuider, RandomNoise
    and FlowSearch Scheduler, then VAEDecode → PreviewImage. Expects the playground loader as node "1", the
    conditioning as "2" and the latent as "3"."""
    return {
        "5": {"class_type": "FlowSearchSampler", "inputs": sampler_inputs},
        "6": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["2", 0]}},
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": 0}},
        "8": {"class_type": "FlowSearchScheduler", "inputs": {"model": ["1", 0], "steps": steps, "grid": grid}},
        "9": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["7", 0], "guider": ["6", 0],
                                                               "sampler": ["5", 0], "sigmas": ["8", 0],
                                                               "latent_image": ["3", 0]}},
        "10": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["1", 2]}},
        "11": {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}},
    }


def sampler_inputs(reward="4", method="rbf", guidance=0.0, options="", nfe_budget=12):
    """FlowSearch Sampler's inputs: `reward` node, the playground's pixel VAE (node "1" output 2)."""
    return {"reward": [reward, 0], "vae": ["1", 2], "method": method, "nfe_budget": nfe_budget, "prompt": "",
            "max_batch": 0, "finish_steps": 0, "guidance_scale": guidance, "options": options}
