"""The plain debian_slim image (images_util.debian_slim_layer_id builds it when the store has none)."""
import skiff

base = skiff.Image.debian_slim()
