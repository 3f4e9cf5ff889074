from diffusers import StableDiffusionPipeline

pipe = StableDiffusionPipeline.from_pretrained("runwayml/stable-diffusion-v1-5")
image = pipe(prompt="an astronaut riding a horse on mars, photorealistic", negative_prompt="blurry").images[0]
image.save("astronaut.png")
