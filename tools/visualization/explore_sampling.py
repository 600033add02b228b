"""Write an interactive HTML page of where the SNL block samples.

Example::

    VAL=data/synthetic_cityscapes/leftImg8bit/val/frankfurt
    python tools/visualization/explore_sampling.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth \
        $VAL/frankfurt_000001_000019_leftImg8bit.png \
        --out work_dirs/demo/sampling_explorer.html

One self-contained file (image, overlay and every query's sampling points
inlined; no server, no network): open it in a browser, hover a pixel to
see its K learned sampling points sized and shaded by attention weight
beside the initial grid, click to pin, toggle the segmentation overlay.
The model runs once on the whole image. ``--screenshot PNG --click Y,X``
also opens the page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium), clicks image pixel (Y, X) and
saves what the browser shows.
"""
import argparse
import os
import os.path as osp
import sys

from mmseg_ssanet.apis import load_segmentor, read_image
from mmseg_ssanet.apis.explorer import explorer_page
from mmseg_ssanet.apis.sampling import parse_point
from mmseg_ssanet.utils.argument_types import (SMALL_IMAGE_OPTION,
                                               add_cfg_options, add_device)


def screenshot(page: str,
               out_png: str,
               click_yx,
               chromium='/usr/bin/chromium',
               chromedriver='/usr/bin/chromedriver') -> None:
    """Open ``page`` in headless Chromium, click pixel (y, x), save PNG."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                 '--window-size=1100,860'):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get('file://' + osp.abspath(page))
        svg = driver.find_element(By.ID, 'marks')
        box = svg.size
        h, w = driver.execute_script('return [D.height, D.width]')
        y, x = click_yx
        ActionChains(driver).move_to_element_with_offset(
            svg, (x + 0.5) * box['width'] / w - box['width'] / 2,
            (y + 0.5) * box['height'] / h -
            box['height'] / 2).click().perform()
        driver.save_screenshot(out_png)
    finally:
        driver.quit()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config (an SNL model)')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument('image', help='the image to explore')
    parser.add_argument(
        '--out',
        default='sampling_explorer.html',
        help='HTML page to write (default %(default)s)')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the prediction overlay (default '
        '%(default)s)')
    add_device(parser)
    add_cfg_options(parser, SMALL_IMAGE_OPTION)
    parser.add_argument('--screenshot', help='PNG of the page after a click')
    parser.add_argument(
        '--click',
        type=parse_point,
        default=None,
        help='image pixel Y,X to click for --screenshot')
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(
            args.config,
            args.checkpoint,
            args.device,
            cfg_options={
                **args.cfg_options, 'model.test_cfg.mode': 'whole'
            })
        image = read_image(args.image)
        page = explorer_page(model, image, osp.basename(args.image),
                             args.opacity)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(page)
    print(f'written {args.out} ({osp.getsize(args.out) / 2**20:.1f} MB)')
    if args.screenshot:
        h, w = image.shape[:2]
        screenshot(args.out, args.screenshot, args.click or (h // 2, w // 2))
        print(f'screenshot {args.screenshot}')


if __name__ == '__main__':
    main()
