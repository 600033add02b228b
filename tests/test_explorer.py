"""The sampling explorer page, opened and clicked in a real browser."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmseg_ssanet.apis import load_segmentor, read_image
from mmseg_ssanet.apis.sampling import sampling_points_for
from .conftest import DEMO, demo_images, run_cli

EXPLORE = 'tools/visualization/explore_sampling.py'
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'


@pytest.fixture(scope='module')
def browser():
    if not (osp.exists(CHROMIUM) and osp.exists(CHROMEDRIVER)):
        why = ('the explorer test needs Chromium and ChromeDriver: '
               '`apt-get install chromium chromium-driver` (Debian; '
               '`make browser` does it as root, `make test` where it can)')
        if os.environ.get('CI') == 'true':  # never skipped in CI
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--window-size=1400,900'):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_click_shows_the_pixels_sampling_points(tmp_path, checkpoint,
                                                cityscapes_root, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    image = osp.join(
        demo_images(cityscapes_root),
        'frankfurt_000000_000019_leftImg8bit.png')
    page = tmp_path / 'explorer.html'
    code, log = run_cli(
        ['python', EXPLORE, DEMO, checkpoint, image, '--out',
         str(page)])
    assert code == 0, log[-2000:]
    html = page.read_text()
    assert 'http://' not in html.replace('http://www.w3.org/2000/svg', '')
    assert 'https://' not in html  # nothing to fetch: self-contained

    # what the page must draw for image pixel (40, 100): Python's answer
    model = load_segmentor(
        DEMO, checkpoint, cfg_options={'model.test_cfg.mode': 'whole'})
    (expected, ) = sampling_points_for(model, read_image(image), [(40, 100)])

    browser.get(page.as_uri())
    svg = browser.find_element(By.ID, 'marks')
    h, w = 64, 128  # the generated test images
    size = svg.size
    # Selenium offsets are from the element's centre
    ActionChains(browser).move_to_element_with_offset(
        svg, (100 + 0.5) * size['width'] / w - size['width'] / 2,
        (40 + 0.5) * size['height'] / h -
        size['height'] / 2).click().perform()

    readout = browser.find_element(By.ID, 'readout')
    fy, fx = expected.feature_pixel
    assert (readout.get_attribute('data-fy'),
            readout.get_attribute('data-fx')) == (str(fy), str(fx))
    assert 'pinned' in readout.text
    samples = browser.find_elements(By.CSS_SELECTOR, 'circle.sample')
    initial = browser.find_elements(By.CSS_SELECTOR, 'circle.initial')
    K = len(expected.weights)
    assert len(samples) == len(initial) == K == 81
    drawn = {int(c.get_attribute('data-k')): c for c in samples}
    weights = np.array(
        [float(drawn[k].get_attribute('data-weight')) for k in range(K)])
    np.testing.assert_allclose(weights, expected.weights, atol=1e-4)
    points = np.array([[
        float(drawn[k].get_attribute('cy')),
        float(drawn[k].get_attribute('cx'))
    ] for k in range(K)])
    np.testing.assert_allclose(points, expected.points, atol=0.01)
    radius = np.array([float(drawn[k].get_attribute('r')) for k in range(K)])
    assert radius.argmax() == weights.argmax()  # sized by weight
    # hovering elsewhere does not move a pinned query
    ActionChains(browser).move_to_element_with_offset(svg, 0, 0).perform()
    assert readout.get_attribute('data-fy') == str(fy)

    overlay = browser.find_element(By.ID, 'overlay')
    assert overlay.is_displayed()
    browser.find_element(By.ID, 'overlay-toggle').click()
    assert not overlay.is_displayed()
    shot = tmp_path / 'shot.png'
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000


def test_page_escapes_hostile_file_names(tmp_path, checkpoint, cityscapes_root,
                                         browser):
    # A page shared with colleagues must not run what a file name says.
    import shutil

    from selenium.webdriver.common.by import By
    name = '<img src=x onerror="document.title=1">__W__ & <b>.png'
    image = tmp_path / name
    shutil.copy(
        osp.join(
            demo_images(cityscapes_root),
            'frankfurt_000000_000019_leftImg8bit.png'), image)
    page = tmp_path / 'explorer.html'
    code, log = run_cli(
        ['python', EXPLORE, DEMO, checkpoint,
         str(image), '--out',
         str(page)])
    assert code == 0, log[-2000:]
    html = page.read_text()
    assert '<img src=x' not in html and '<b>' not in html
    assert ('&lt;img src=x onerror=&quot;document.title=1&quot;&gt;__W__ '
            '&amp; &lt;b&gt;.png') in html
    browser.get(page.as_uri())
    assert browser.execute_script(
        'return document.querySelectorAll("img[onerror], b").length') == 0
    heading = browser.find_element(By.TAG_NAME, 'h3').text
    assert heading == f'Where the SNL block samples: {name}'
    assert browser.title == f'SSANet sampling explorer: {name}'


def test_explorer_names_a_model_without_snl(tmp_path, cityscapes_root):
    from mmengine.runner.checkpoint import save_checkpoint
    from mmseg.datasets import CityscapesDataset
    base = 'configs/ablation/mobilenetv2_fcn-baseline_cityscapes.py'
    torch.manual_seed(0)
    model = load_segmentor(base)
    ckpt = str(tmp_path / 'fcn.pth')
    save_checkpoint(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(CityscapesDataset.METAINFO))), ckpt)
    image = osp.join(
        demo_images(cityscapes_root),
        'frankfurt_000000_000019_leftImg8bit.png')
    code, log = run_cli([
        'python', EXPLORE, base, ckpt, image, '--out',
        str(tmp_path / 'x.html')
    ])
    assert code != 0
    assert 'has no SparseNonLocal2d block' in log
